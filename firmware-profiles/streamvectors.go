package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/mqttsrc"
	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// vectorTime is when a stream test's input arrives: after any row time a
// feed's test data holds.
var vectorTime = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func ntp() telemetry.ClockQuality { return telemetry.ClockNTP }

// runStreamTests feeds each test's input to a fresh decoder (or mapper) at
// one moment and compares: every reading (the set of metrics must equal
// expect), qualities, events in order, counted refusals and bytes sent.
func (p *Profile) runStreamTests() error {
	var errs []error
	for _, t := range p.Tests {
		in := []byte(t.Input)
		if len(t.InputHex) > 0 {
			in = t.InputHex
		}
		var out stream.Output
		var st stream.Stats
		if p.Mqtt != nil {
			m := mqttsrc.NewMapper(*p.Mqtt, ntp)
			out = m.Map(t.Topic, in, vectorTime)
			st = m.Stats()
		} else {
			d, err := p.NewDecoder("test", ntp, nil)
			if err != nil {
				return err
			}
			out = d.Start(vectorTime)
			out.Add(d.Feed(in, vectorTime))
			st = d.Stats()
		}
		if err := checkStream(t, out, st); err != nil {
			errs = append(errs, fmt.Errorf("%s: test %q: %w", p.file, t.Name, err))
		}
	}
	return errors.Join(errs...)
}

func checkStream(t Test, out stream.Output, st stream.Stats) error {
	var errs []error
	got := map[string]telemetry.Reading{}
	for _, r := range out.Readings {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
		}
		got[r.Metric] = r
	}
	if !slices.Equal(sortedKeys(got), sortedKeys(t.Expect)) {
		errs = append(errs, fmt.Errorf("metrics %v, want %v", sortedKeys(got), sortedKeys(t.Expect)))
	}
	for metric, want := range t.Expect {
		r, ok := got[metric]
		if ok && !close(r.Value, want) {
			errs = append(errs, fmt.Errorf("%s = %v, want %v", metric, r.Value, want))
		}
		if ok && (r.Quality == telemetry.Bad) != slices.Contains(t.Bad, metric) {
			errs = append(errs, fmt.Errorf("%s: quality %v, want bad %v", metric, r.Quality, slices.Contains(t.Bad, metric)))
		}
	}
	if t.Events != nil || len(out.Events) > 0 {
		if len(out.Events) != len(t.Events) {
			errs = append(errs, fmt.Errorf("%d events, want %d: %+v", len(out.Events), len(t.Events), out.Events))
		} else {
			for i, e := range out.Events {
				w := t.Events[i]
				if err := e.Validate(); err != nil {
					errs = append(errs, err)
				}
				if e.Key != w.Key || !maps.Equal(e.Attrs, w.Attrs) || !maps.EqualFunc(e.Values, w.Values, close) {
					errs = append(errs, fmt.Errorf("event %d = %s %v %v, want %s %v %v", i, e.Key, e.Attrs, e.Values, w.Key, w.Attrs, w.Values))
				}
			}
		}
	}
	for kind, n := range t.Errors {
		if st.Errors[kind] != n {
			errs = append(errs, fmt.Errorf("%d %s errors counted, want %d (all: %v)", st.Errors[kind], kind, n, st.Errors))
		}
	}
	if len(t.SendHex) > 0 && !bytes.Equal(out.Send, t.SendHex) {
		errs = append(errs, fmt.Errorf("sent % X, want % X", out.Send, []byte(t.SendHex)))
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
