// Package alert holds the early-warning vocabulary shared by the rule
// engine (alert/engine), its rules (alert/rules), the notifier, the API and
// the page: severities, alert instances and their states, silences and
// history entries.
//
// Alerts are monitoring early warnings for bureaus, derived from sensors;
// they are not the official public warning signals that designated agencies
// issue, and they carry the label source="fieldwatch" to say so.
package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Severity is one of China's four warning colours (Emergency Response Law
// art. 42; CMA Order No. 16, 2007): blue (IV, 一般) up to red (I, 特别严重).
// The zero Severity is "none".
type Severity int

// Severities in rising order.
const (
	None Severity = iota
	Blue
	Yellow
	Orange
	Red
)

var severityNames = [...]string{None: "none", Blue: "blue", Yellow: "yellow", Orange: "orange", Red: "red"}
var severityCN = [...]string{None: "", Blue: "蓝色 (IV 一般)", Yellow: "黄色 (III 较重)", Orange: "橙色 (II 严重)", Red: "红色 (I 特别严重)"}

func (s Severity) String() string {
	if s < None || s > Red {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// Level is the numeric warning level: 4 for blue … 1 for red, 0 for none.
func (s Severity) Level() int {
	if s <= None || s > Red {
		return 0
	}
	return 5 - int(s)
}

// Chinese names the colour and grade in Chinese.
func (s Severity) Chinese() string {
	if s < None || s > Red {
		return ""
	}
	return severityCN[s]
}

// ParseSeverity reads a colour name.
func ParseSeverity(v string) (Severity, error) {
	for i, n := range severityNames {
		if i > 0 && n == v {
			return Severity(i), nil
		}
	}
	return None, fmt.Errorf("%q is not a severity (blue, yellow, orange, red)", v)
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	if string(b) == "none" {
		*s = None
		return nil
	}
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// UnmarshalYAML reads a colour name in a rule file.
func (s *Severity) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSeverity(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a severity (blue, yellow, orange, red)", n.Line, n.Value)}}
	}
	*s = v
	return nil
}

// State is where an alert instance is in its lifecycle.
type State string

// States: inactive → pending (condition holds, `for` not yet over) → firing
// (at a level) → resolved.
const (
	Inactive State = "inactive"
	Pending  State = "pending"
	Firing   State = "firing"
	Resolved State = "resolved"
)

// Alert is one alert instance: one per rule and series, whose level rises
// and falls; it is never duplicated.
type Alert struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	State       State             `json:"state"`
	Severity    Severity          `json:"severity"`
	// Value is the value that last decided the state (the reading, the
	// sum, the class index).
	Value float64 `json:"value"`
	// Since is when the current state began (event time); ActiveAt when
	// the condition first held; StartsAt when it began firing; EndsAt when
	// it resolved.
	Since    time.Time `json:"since"`
	ActiveAt time.Time `json:"active_at,omitzero"`
	StartsAt time.Time `json:"starts_at,omitzero"`
	EndsAt   time.Time `json:"ends_at,omitzero"`
	// EvaluatedAt is the event time of the newest value judged.
	EvaluatedAt time.Time `json:"evaluated_at"`
	// Seq rises on every change of state or level (part of the
	// notification idempotency key).
	Seq      uint64 `json:"seq"`
	Ack      *Ack   `json:"ack,omitempty"`
	Flapping bool   `json:"flapping,omitempty"`
	// Silenced lists the silences that mute it; InhibitedBy the alert
	// that does (an offline gateway's).
	Silenced    []string `json:"silenced,omitempty"`
	InhibitedBy string   `json:"inhibited_by,omitempty"`
}

// Muted reports whether a silence or an inhibition keeps it quiet.
func (a *Alert) Muted() bool { return len(a.Silenced) > 0 || a.InhibitedBy != "" }

// Ack is an acknowledgement: it stops repeat notifications until the level
// rises or the alert resolves.
type Ack struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// Fingerprint is the identity of an alert instance: 16 hex digits of a
// hash of its rule and series labels (sorted), in the manner of
// Alertmanager's fingerprints.
func Fingerprint(rule string, series map[string]string) string {
	keys := make([]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	h.Write([]byte(rule))
	for _, k := range keys {
		h.Write([]byte{0xff})
		h.Write([]byte(k))
		h.Write([]byte{0xfe})
		h.Write([]byte(series[k]))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Transition is one entry in an alert's history.
type Transition struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Labels      map[string]string `json:"labels"`
	From        State             `json:"from"`
	To          State             `json:"to"`
	Severity    Severity          `json:"severity"`
	Value       float64           `json:"value"`
	// Unit is the series' unit; ValueText the value with it ("38.5 °C"),
	// empty where the rule measures nothing (absence); Threshold the level
	// crossed ("> 37 °C"), on transitions to firing.
	Unit      string    `json:"unit,omitempty"`
	ValueText string    `json:"value_text,omitempty"`
	Threshold string    `json:"threshold,omitempty"`
	Time      time.Time `json:"time"` // event time
	// Backfilled marks transitions found in data that arrived late (a
	// gateway's backlog): recorded, never notified.
	Backfilled bool `json:"backfilled,omitempty"`
}

// Silence mutes the alerts its matchers all match, between StartsAt and
// EndsAt.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
}

// Active reports whether s mutes at t.
func (s *Silence) Active(t time.Time) bool { return !t.Before(s.StartsAt) && t.Before(s.EndsAt) }

// Matches reports whether every matcher matches labels.
func (s *Silence) Matches(labels map[string]string) bool {
	for i := range s.Matchers {
		if !s.Matchers[i].Matches(labels) {
			return false
		}
	}
	return len(s.Matchers) > 0
}

// Check validates a silence as a client sent it.
func (s *Silence) Check() error {
	if len(s.Matchers) == 0 {
		return fmt.Errorf("a silence needs at least one matcher")
	}
	for i := range s.Matchers {
		if err := s.Matchers[i].Compile(); err != nil {
			return fmt.Errorf("matchers[%d]: %w", i, err)
		}
	}
	switch {
	case s.StartsAt.IsZero() || s.EndsAt.IsZero():
		return fmt.Errorf("starts_at and ends_at are required")
	case !s.EndsAt.After(s.StartsAt):
		return fmt.Errorf("ends_at must be after starts_at")
	case strings.TrimSpace(s.CreatedBy) == "":
		return fmt.Errorf("created_by is required: who silences")
	case strings.TrimSpace(s.Comment) == "":
		return fmt.Errorf("comment is required: why")
	}
	return nil
}

// Matcher matches one label: = != =~ !~ (regular expressions anchored, as
// in Alertmanager).
type Matcher struct {
	Name  string `json:"name"`
	Op    string `json:"op"`
	Value string `json:"value"`
	re    *regexp.Regexp
}

// Compile checks the matcher and compiles its expression.
func (m *Matcher) Compile() error {
	if m.Name == "" {
		return fmt.Errorf("matcher without a label name")
	}
	switch m.Op {
	case "", "=", "!=":
		if m.Op == "" {
			m.Op = "="
		}
	case "=~", "!~":
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return fmt.Errorf("label %s: bad regular expression: %w", m.Name, err)
		}
		m.re = re
	default:
		return fmt.Errorf("label %s: operator %q is not one of = != =~ !~", m.Name, m.Op)
	}
	return nil
}

// Matches reports whether labels satisfy m; a missing label is "".
func (m *Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Op {
	case "!=":
		return v != m.Value
	case "=~":
		return m.re != nil && m.re.MatchString(v)
	case "!~":
		return m.re != nil && !m.re.MatchString(v)
	}
	return v == m.Value
}
