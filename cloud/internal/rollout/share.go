package rollout

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Share is a part of a group: a count of gateways, or a percentage.
type Share struct {
	Count   int     `json:"count,omitempty"`
	Percent float64 `json:"percent,omitempty"`
}

// ParseShare reads "3" (a count) or "10%" (a percentage of at most 100,
// up to two decimals: "12.5%").
func ParseShare(s string) (Share, error) {
	t := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(t, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > 100 || math.Round(v*100) != v*100 {
			return Share{}, fmt.Errorf("%q is not a percentage from 0%% to 100%%", s)
		}
		return Share{Percent: v}, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > 1_000_000 {
		return Share{}, fmt.Errorf("%q is neither a count of gateways nor a percentage (10%%)", s)
	}
	return Share{Count: n}, nil
}

// String is the share in ParseShare's form.
func (s Share) String() string {
	if s.Percent > 0 {
		return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(s.Count)
}

// MarshalJSON writes the share as its text.
func (s Share) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads ParseShare's form.
func (s *Share) UnmarshalJSON(b []byte) error {
	var t string
	if err := json.Unmarshal(b, &t); err != nil {
		return err
	}
	v, err := ParseShare(t)
	*s = v
	return err
}

// Of is the share of n gateways: a count as it is (at most n), a
// percentage rounded up when up is true, else down.
func (s Share) Of(n int, up bool) int {
	if s.Percent == 0 {
		return min(s.Count, n)
	}
	// Hundredths of a percent are exact in integers: 12.5% of 8 is 1.
	num := int64(math.Round(s.Percent*100)) * int64(n)
	k := num / 10000
	if up && num%10000 != 0 {
		k++
	}
	return int(min(k, int64(n)))
}

// ParseSelector reads a group's labels, "county=laoshan,kind=river" (":"
// may stand for "="; spaces around are ignored): each key and value an
// id, each key once, at most telemetry.MaxLabels.
func ParseSelector(s string) (map[string]string, error) {
	labels := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no labels: a rollout's group is given by labels, county=laoshan,kind=river")
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			k, v, ok = strings.Cut(part, ":")
		}
		if !ok {
			return nil, fmt.Errorf("%q is not key=value (county=laoshan)", part)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if err := telemetry.CheckName("label", k); err != nil {
			return nil, err
		}
		if err := telemetry.CheckName("label "+k+" value", v); err != nil {
			return nil, err
		}
		if old, dup := labels[k]; dup {
			return nil, fmt.Errorf("label %s given as %q and %q: a gateway has one", k, old, v)
		}
		labels[k] = v
	}
	if len(labels) > telemetry.MaxLabels {
		return nil, fmt.Errorf("%d labels, more than %d", len(labels), telemetry.MaxLabels)
	}
	return labels, nil
}

// FormatSelector writes labels in ParseSelector's form, sorted by key.
func FormatSelector(labels map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + labels[k])
	}
	return b.String()
}
