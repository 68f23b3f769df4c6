package extauthz

// BenchCheck runs BenchmarkCheck's cases with an Observer and a
// TracerProvider, for benchmarks in package extauthz_test, which may import
// extauthz/metrics.
var BenchCheck = benchCheck
