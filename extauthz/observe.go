package extauthz

import "fmt"

// Observer is told about every decision once it is made, e.g. to count it
// in metrics (package extauthz/metrics). ObserveDecision runs on the Check's
// goroutine: it must be fast, must not block, and must not keep d.
type Observer interface {
	ObserveDecision(d *Decision)
}

// observe hands d to the observer; a panic there is logged and leaves the
// decision as it is, rather than escaping the Check.
func (a *Authorizer) observe(d *Decision) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("decision observer panicked", "panic", fmt.Sprint(p), "id", d.ID)
		}
	}()
	a.cfg.Observer.ObserveDecision(d)
}
