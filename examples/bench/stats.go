package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

func sortDurations(d []time.Duration) { slices.Sort(d) }

// percentile returns the q-quantile (0 < q ≤ 1) of sorted by the
// nearest-rank method.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// summary merges the rounds of one scenario against one target.
type summary struct {
	rounds    []runResult
	requests  int
	elapsed   time.Duration
	latencies []time.Duration // all rounds, sorted
	lags      []time.Duration // open loop, all rounds, sorted
	reused    int64
}

func (s *summary) add(r runResult) {
	s.rounds = append(s.rounds, r)
	s.requests += r.requests
	s.elapsed += r.elapsed
	s.latencies = append(s.latencies, r.latencies...)
	s.lags = append(s.lags, r.lags...)
	s.reused += r.reused
}

func (s *summary) finish() {
	sortDurations(s.latencies)
	sortDurations(s.lags)
}

// rps is the throughput over all rounds: requests / total time.
func (s *summary) rps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.requests) / s.elapsed.Seconds()
}

// spread is the lowest and highest per-round throughput.
func (s *summary) spread() string {
	if len(s.rounds) < 2 {
		return "–"
	}
	lo, hi := math.Inf(1), 0.0
	for _, r := range s.rounds {
		lo, hi = min(lo, r.rps()), max(hi, r.rps())
	}
	return fmtRate(lo) + "–" + fmtRate(hi)
}

func (s *summary) p(q float64) string { return fmtDur(percentile(s.latencies, q)) }

// fmtRate prints a rate with thousands separators: 12 345.
func fmtRate(r float64) string {
	s := fmt.Sprintf("%.0f", r)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(" ")
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtDur prints a latency in µs below 1 ms, else in ms.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
}

// table is a Markdown table.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) String() string {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	line(t.header)
	sep := make([]string, len(t.header))
	for i := range sep {
		sep[i] = "---"
		if i >= 2 {
			sep[i] = "---:"
		}
	}
	line(sep)
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}
