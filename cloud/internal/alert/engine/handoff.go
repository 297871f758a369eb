package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Handoff keeps each gateway's alert state where the next replica to hold
// the gateway finds it (natslink's key-value bucket): so a failover or a
// rebalance neither drops a pending timer nor pages again for what already
// fires. Save is called, under the engine's lock, after the state is
// written locally; it must not block (it queues).
type Handoff interface {
	Save(ctx context.Context, gw string, state []byte)
}

// handoffEntry is one series of a gateway's saved state.
type handoffEntry struct {
	Key  string          `json:"k"` // rule, gateway, device, metric joined by \x1f (keyString)
	Data json.RawMessage `json:"d"` // the series, as the engine's database keeps it
}

// handOff saves the state of the gateways of rows that were just written.
func (e *Engine) handOff(rows []*series) {
	if e.o.Handoff == nil {
		return
	}
	var gws []string
	for _, s := range rows {
		if s.key.gw != "" && !slices.Contains(gws, s.key.gw) {
			gws = append(gws, s.key.gw)
		}
	}
	for _, gw := range gws {
		state, err := e.exportLocked(gw)
		if err != nil {
			e.log.Error("BUG: cannot encode a gateway's alert state for handoff", "gateway", gw, "err", err)
			continue
		}
		e.o.Handoff.Save(context.Background(), gw, state)
	}
}

// exportLocked encodes every series of gateway gw.
func (e *Engine) exportLocked(gw string) ([]byte, error) {
	var out []handoffEntry
	for k, s := range e.series {
		if k.gw != gw {
			continue
		}
		data, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		out = append(out, handoffEntry{Key: keyString(s.rule.ID, k), Data: data})
	}
	slices.SortFunc(out, func(a, b handoffEntry) int { return strings.Compare(a.Key, b.Key) })
	return json.Marshal(out)
}

// Take replaces gateway gw's alert state with what the replica that held
// it before saved (Handoff): called when this replica takes the partition
// gw is in, before it judges gw's batches. Series of rules this engine
// does not have are dropped, as at a restart.
func (e *Engine) Take(gw string, state []byte) error {
	var in []handoffEntry
	if err := json.Unmarshal(state, &in); err != nil {
		return fmt.Errorf("alert state of %s: %w", gw, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.forgetLocked(gw)
	byID := e.rulesByID()
	n := 0
	for _, x := range in {
		if parts := strings.Split(x.Key, "\x1f"); len(parts) != 4 || parts[1] != gw {
			e.log.Warn("handed-off alert state names another gateway; dropped", "gateway", gw,
				"series", strings.ReplaceAll(x.Key, "\x1f", "/"))
			continue
		}
		if s := e.restore(byID, x.Key, x.Data); s != nil {
			e.touch(s)
			n++
		}
	}
	e.log.Info("took a gateway's alert state from the replica that held it", "gateway", gw, "series", n)
	return nil
}

// forgetServed drops the series of gateways this replica no longer holds
// (Serves): their new holder continues them from the saved state. Nothing
// is resolved or published for them here.
func (e *Engine) forgetServed() {
	if e.o.Serves == nil {
		return
	}
	var gone []string
	for k := range e.series {
		if k.gw == "" || slices.Contains(gone, k.gw) {
			continue
		}
		if ok, _ := e.o.Serves(k.gw); !ok {
			gone = append(gone, k.gw)
		}
	}
	for _, gw := range gone {
		e.forgetLocked(gw)
	}
}

// forgetLocked drops every series of gateway gw from memory, and what
// refers to them.
func (e *Engine) forgetLocked(gw string) {
	drop := func(s *series) bool { return s.key.gw == gw }
	for k, s := range e.series {
		if k.gw != gw {
			continue
		}
		delete(e.series, k)
		if e.byFP[s.A.Fingerprint] == s {
			delete(e.byFP, s.A.Fingerprint)
		}
		delete(e.settling, s)
		delete(e.evSeries, s)
		delete(e.fcSeries, s)
	}
	for pk, ss := range e.peers {
		if ss = slices.DeleteFunc(ss, drop); len(ss) == 0 {
			delete(e.peers, pk)
		} else {
			e.peers[pk] = ss
		}
	}
	for nk, ss := range e.near {
		if ss = slices.DeleteFunc(ss, drop); len(ss) == 0 {
			delete(e.near, nk)
		} else {
			e.near[nk] = ss
		}
	}
	for k := range e.latest {
		if k.gw == gw {
			delete(e.latest, k)
		}
	}
	e.dirty = slices.DeleteFunc(e.dirty, drop)
	e.moved = slices.DeleteFunc(e.moved, drop)
	delete(e.muting, gw)
	delete(e.downNow, gw)
	delete(e.upAt, gw)
	for bk := range e.busMute {
		if bk.gw == gw {
			delete(e.busMute, bk)
		}
	}
}
