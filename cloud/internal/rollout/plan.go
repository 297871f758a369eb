package rollout

import (
	"crypto/sha256"
	"slices"
	"strings"
)

// Plan orders the gateways ids and splits them into steps: the canary,
// canary's share of them rounded up (at least one), then the rest in
// waves steps as even as can be (the earlier ones take the remainder; a
// wave with no gateway is dropped). The order is a hash of each id with
// seed (the rollout's id): the same for the same rollout, so a restarted
// cloud plans the same steps, and different from one rollout to the next,
// so the same gateways are not always the canaries.
func Plan(ids []string, seed string, canary Share, waves int) [][]string {
	if len(ids) == 0 {
		return nil
	}
	order := slices.Clone(ids)
	key := func(id string) string {
		h := sha256.Sum256([]byte(seed + "\x00" + id))
		return string(h[:])
	}
	slices.SortFunc(order, func(a, b string) int {
		if c := strings.Compare(key(a), key(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	n := max(canary.Of(len(order), true), 1)
	steps := [][]string{order[:n]}
	rest := order[n:]
	waves = max(waves, 1)
	for w := range waves {
		size := len(rest) / (waves - w)
		if len(rest)%(waves-w) != 0 {
			size++
		}
		if size > 0 {
			steps = append(steps, rest[:size])
		}
		rest = rest[size:]
	}
	return steps
}
