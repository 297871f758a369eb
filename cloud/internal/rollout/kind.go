package rollout

// Outcome is what a gateway reports of one version of a change.
type Outcome int

// Outcomes: Pending, no verdict yet (not received, or under its health
// check); Healthy, it runs the version and kept it; Bad, it refused the
// version or rolled it back.
const (
	Pending Outcome = iota
	Healthy
	Bad
)

// Kind is what a rollout changes on each gateway: "config" (ConfigKind)
// or "release" (ReleaseKind, signed binary updates). The engine calls them from one goroutine at a time per
// rollout, never while holding its lock for long: Publish may block on
// the broker for a while.
type Kind interface {
	// Check checks item, an uploaded signed item (or revert), as far as
	// the cloud can without a key: its form, that it is addressed to
	// gateway gw, and returns its version. The signature is the gateway's
	// to verify.
	Check(gw string, item []byte) (version uint64, err error)
	// Publish hands item to gateway gw (retained: a gateway offline now
	// takes it when it connects). An error is retried at the next tick.
	Publish(gw string, item []byte) error
	// Observe says where gw stands with version v of this kind, item
	// (the signed item or revert of that version; nil when there is none
	// yet), from what it last reported, and why when Bad. Newest is the highest
	// version of this kind the gateway is known to have seen (running,
	// refused or rolled back): a rollout's version must be above it.
	Observe(gw string, v uint64, item []byte) (o Outcome, why string, newest uint64)
}
