package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// target is a server under load: claimcheck or the null server.
type target struct {
	name       string
	claimcheck bool // its answers are checked against the scenario
	clients    []authv3.AuthorizationClient
}

// load describes one timed run.
type load struct {
	concurrency int
	duration    time.Duration
	// rate > 0: open loop, requests scheduled every 1/rate seconds across
	// all workers; how late each was sent is recorded apart (lags), since
	// Go's timers on Linux wake up to ~1 ms late, which would otherwise
	// swamp sub-millisecond latencies. 0: closed loop, each worker sends
	// its next request as soon as the previous one returns.
	rate float64
}

// runResult is what one run measured.
type runResult struct {
	requests   int
	elapsed    time.Duration
	latencies  []time.Duration // sorted; from send to answer
	lags       []time.Duration // open loop: send time − scheduled time, sorted
	errors     int             // gRPC errors
	mismatches int             // answers other than the expected one
	example    string          // the first error or mismatch
	reused     int64           // tokens of a distinct pool sent more than once
}

func (r runResult) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// run sends sc's traffic to tg as l says and measures it.
func run(ctx context.Context, tg *target, sc *scenario, l load) runResult {
	ctx, cancel := context.WithTimeout(ctx, l.duration+30*time.Second)
	defer cancel()
	src := sc.source(tg.claimcheck)
	type workerResult struct {
		lat, lag   []time.Duration
		errors     int
		mismatches int
		example    string
	}
	results := make([]workerResult, l.concurrency)
	var scheduled atomic.Int64 // open loop: index of the next request slot
	interval := time.Duration(0)
	if l.rate > 0 {
		interval = time.Duration(float64(time.Second) / l.rate)
	}
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(l.duration)
	for w := range l.concurrency {
		wg.Go(func() {
			res := &results[w]
			res.lat = make([]time.Duration, 0, 4096)
			client := tg.clients[w%len(tg.clients)]
			tmpl := newRequestTemplate(w)
			for ctx.Err() == nil {
				if interval > 0 {
					due := start.Add(time.Duration(scheduled.Add(1)-1) * interval)
					if !due.Before(end) {
						return
					}
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
					res.lag = append(res.lag, time.Since(due))
				}
				t0 := time.Now()
				if !t0.Before(end) && interval == 0 {
					return
				}
				req := tmpl.next(src.next())
				resp, err := client.Check(ctx, req)
				res.lat = append(res.lat, time.Since(t0))
				switch {
				case err != nil:
					if ctx.Err() != nil {
						return
					}
					res.errors++
					if res.example == "" {
						res.example = err.Error()
					}
				case tg.claimcheck:
					if ok, got := sc.want.matches(resp); !ok {
						res.mismatches++
						if res.example == "" {
							res.example = got
						}
					}
				}
			}
		})
	}
	wg.Wait()
	out := runResult{elapsed: time.Since(start), reused: src.reused.Load()}
	n := 0
	for _, r := range results {
		n += len(r.lat)
	}
	out.latencies = make([]time.Duration, 0, n)
	for _, r := range results {
		out.latencies = append(out.latencies, r.lat...)
		out.lags = append(out.lags, r.lag...)
		out.errors += r.errors
		out.mismatches += r.mismatches
		if out.example == "" {
			out.example = r.example
		}
	}
	out.requests = n
	sortDurations(out.latencies)
	sortDurations(out.lags)
	return out
}

// failures describes what went wrong in r, or "" when nothing did.
func (r runResult) failures(sc *scenario) string {
	if r.errors == 0 && r.mismatches == 0 {
		return ""
	}
	return fmt.Sprintf("%d gRPC errors and %d answers other than %q out of %d requests; first: %s",
		r.errors, r.mismatches, sc.want, r.requests, r.example)
}
