package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Updates is when a gateway release that has been fetched and verified may
// be swapped in (docs/fleet.md, Binary updates). Fetching happens at any
// time; the swap — a restart of the gateway — only inside the window.
type Updates struct {
	// Window is one or more daily spans of the gateway's local time,
	// "02:00-05:00" or "22:00-02:00, 13:00-13:30" (a span may cross
	// midnight); empty is any time.
	Window string `yaml:"window"`

	// Windows is Window parsed.
	Windows Windows `yaml:"-"`
}

// Windows are daily spans of local time; none is any time.
type Windows []Span

// Span is a daily span of minutes after midnight, [From, To); To < From
// crosses midnight.
type Span struct{ From, To int }

// Contains reports whether t, in its own location, is inside a window.
func (w Windows) Contains(t time.Time) bool {
	if len(w) == 0 {
		return true
	}
	m := t.Hour()*60 + t.Minute()
	for _, s := range w {
		if s.From < s.To && m >= s.From && m < s.To || s.From > s.To && (m >= s.From || m < s.To) {
			return true
		}
	}
	return false
}

// String is the windows as Window writes them.
func (w Windows) String() string {
	if len(w) == 0 {
		return "any time"
	}
	parts := make([]string, len(w))
	for i, s := range w {
		parts[i] = fmt.Sprintf("%02d:%02d-%02d:%02d", s.From/60, s.From%60, s.To/60, s.To%60)
	}
	return strings.Join(parts, ", ")
}

// ParseWindows reads Window's form.
func ParseWindows(s string) (Windows, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var w Windows
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		from, to, ok := strings.Cut(part, "-")
		if !ok {
			return nil, fmt.Errorf("%q is not HH:MM-HH:MM", part)
		}
		f, err := clockMinutes(from)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		t, err := clockMinutes(to)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		if f == t {
			return nil, fmt.Errorf("%q is empty (for any time, leave the window out)", part)
		}
		w = append(w, Span{f, t})
	}
	return w, nil
}

// clockMinutes reads "HH:MM" (24:00 is midnight at the end of a day).
func clockMinutes(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if strings.TrimSpace(s) == "24:00" {
		return 0, nil
	}
	if err != nil || len(strings.TrimSpace(s)) != 5 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", strings.TrimSpace(s))
	}
	return t.Hour()*60 + t.Minute(), nil
}

func (c *Config) validateUpdates(r *yamlconf.Report) {
	w, err := ParseWindows(c.Updates.Window)
	if err != nil {
		r.Errorf("updates.window", "%v", err)
	}
	c.Updates.Windows = w
}
