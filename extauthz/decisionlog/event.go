package decisionlog

import "time"

// Event is one decision as sent to a decision log service. Its fields map
// onto OPA's decision log event (logs.EventV1) as noted.
type Event struct {
	// DecisionID identifies the decision (decision_id).
	DecisionID string

	// Time is when the decision was made (timestamp).
	Time time.Time

	// Path is the decision rule, e.g. "claimcheck/authz/allow" (path).
	Path string

	// Input is the policy input, already redacted by the caller (input).
	Input map[string]any

	// Result is the decision (result).
	Result any

	// Revision is the revision of the policy that decided (revision).
	Revision string

	// Metrics are numbers about the decision, e.g. timers in nanoseconds
	// (metrics).
	Metrics map[string]any
}
