package rfid

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
)

// TestProfiles runs the test vectors of the example profiles in
// testdata/profiles: each test's input is fed at once after Start, and
// the events (and, where given, the bytes sent and the error counts) must
// match exactly. The files are read with a small reader of the subset of
// YAML they use, to keep this package on the standard library.
func TestProfiles(t *testing.T) {
	files, err := filepath.Glob("testdata/profiles/*/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("profiles not found: %v %v", files, err)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			p, err := readProfile(file)
			if err != nil {
				t.Fatal(err)
			}
			model := strings.TrimSuffix(strings.TrimPrefix(filepath.ToSlash(file), "testdata/profiles/"), ".yaml")
			if p.top["model"] != model || p.top["kind"] != "rfid" {
				t.Errorf("unexpected model %q or kind %q", p.top["model"], p.top["kind"])
			}
			cfg := p.cfg
			cfg.Normalize()
			if bad := cfg.Check(); len(bad) > 0 {
				t.Fatalf("bad rfid section: %v", bad)
			}
			if len(p.tests) == 0 {
				t.Fatal("no tests")
			}
			for _, c := range p.tests {
				d := New(p.cfg, testDevice, nil)
				out := d.Start(t0)
				out.Add(d.Feed(c.input, t0))
				var got []map[string]any
				for _, e := range out.Events {
					if err := e.Validate(); err != nil || !e.Time.Equal(t0) {
						t.Errorf("%s: bad event %+v: %v", c.name, e, err)
					}
					got = append(got, eventMap(e.Key, e.Attrs, e.Values))
				}
				if !reflect.DeepEqual(got, c.events) {
					t.Errorf("%s: unexpected events\ngot  %v\nwant %v", c.name, got, c.events)
				}
				if c.send != nil && !reflect.DeepEqual(out.Send, c.send) {
					t.Errorf("%s: unexpected send\ngot  % X\nwant % X", c.name, out.Send, c.send)
				}
				if st := d.Stats(); !equalStats(stream.Stats{Errors: st.Errors}, stream.Stats{Errors: c.errors}) {
					t.Errorf("%s: unexpected errors; got %v; want %v", c.name, st.Errors, c.errors)
				}
			}
		})
	}
}

func eventMap(key string, attrs map[string]string, values map[string]float64) map[string]any {
	a := map[string]any{}
	for k, v := range attrs {
		a[k] = v
	}
	v := map[string]any{}
	for k, x := range values {
		v[k] = x
	}
	return map[string]any{"key": key, "attrs": a, "values": v}
}

// profile is what TestProfiles reads from a file.
type profile struct {
	top   map[string]string
	cfg   Config
	tests []profileTest
}

type profileTest struct {
	name   string
	input  []byte
	send   []byte
	events []map[string]any
	errors map[string]uint64
}

// readProfile reads the YAML subset of the example profiles: top-level
// scalars and lists, the rfid mapping (with defaults), and tests as a
// list of mappings whose values are scalars or flow collections, events
// possibly as a block list of flow mappings.
func readProfile(file string) (*profile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p := &profile{top: map[string]string{}}
	section := ""
	var cur *profileTest
	for n, raw := range strings.Split(string(data), "\n") {
		line := stripComment(raw)
		if strings.TrimSpace(line) == "" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		text := strings.TrimSpace(line)
		fail := func(err error) error { return fmt.Errorf("%s:%d: %v", file, n+1, err) }
		switch {
		case indent == 0:
			k, v, _ := strings.Cut(text, ":")
			section, p.top[k] = k, strings.TrimSpace(v)
		case section == "rfid" && indent == 2:
			k, v, _ := strings.Cut(text, ":")
			if err := setConfig(&p.cfg, k, strings.TrimSpace(v)); err != nil {
				return nil, fail(err)
			}
		case section == "tests" && strings.HasPrefix(text, "- ") && indent == 2:
			p.tests = append(p.tests, profileTest{})
			cur = &p.tests[len(p.tests)-1]
			text = strings.TrimPrefix(text, "- ")
			fallthrough
		case section == "tests" && cur != nil && !strings.HasPrefix(text, "- "):
			k, v, _ := strings.Cut(text, ":")
			if err := setTest(cur, k, strings.TrimSpace(v)); err != nil {
				return nil, fail(err)
			}
		case section == "tests" && cur != nil: // "- {…}" item of events
			v, rest, err := parseFlow(strings.TrimPrefix(text, "- "))
			if err != nil || strings.TrimSpace(rest) != "" {
				return nil, fail(fmt.Errorf("bad event %q: %v", text, err))
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fail(fmt.Errorf("event %q is not a mapping", text))
			}
			cur.events = append(cur.events, m)
		}
	}
	return p, nil
}

// stripComment drops a # comment outside double quotes.
func stripComment(s string) string {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == '#' && !quoted && (i == 0 || s[i-1] == ' '):
			return strings.TrimRight(s[:i], " ")
		}
	}
	return s
}

func setConfig(c *Config, k, v string) error {
	dur := func(d *time.Duration) (err error) { *d, err = time.ParseDuration(v); return err }
	switch k {
	case "protocol":
		c.Protocol = Protocol(v)
	case "dedup":
		return dur(&c.Dedup)
	case "poll_interval":
		return dur(&c.PollInterval)
	case "timeout":
		return dur(&c.Timeout)
	case "min_reads":
		n, err := strconv.Atoi(v)
		c.MinReads = n
		return err
	case "defaults":
	default:
		return fmt.Errorf("unknown rfid field %q", k)
	}
	return nil
}

func setTest(c *profileTest, k, v string) error {
	var err error
	switch k {
	case "name":
		c.name = v
	case "input":
		var s string
		s, err = strconv.Unquote(v)
		c.input = []byte(s)
	case "input_hex", "send_hex":
		var s string
		if s, err = strconv.Unquote(v); err == nil {
			var b []byte
			b, err = hex.DecodeString(strings.Join(strings.Fields(s), ""))
			if k == "input_hex" {
				c.input = b
			} else {
				c.send = b
			}
		}
	case "events":
		if v != "" && v != "[]" {
			err = fmt.Errorf("events must be [] or a block list")
		}
	case "errors":
		var f any
		if f, _, err = parseFlow(v); err == nil {
			c.errors = map[string]uint64{}
			for name, n := range f.(map[string]any) {
				c.errors[name] = uint64(n.(float64))
			}
		}
	default:
		err = fmt.Errorf("unknown test field %q", k)
	}
	return err
}

// parseFlow parses a flow mapping, flow sequence or scalar at the start
// of s, returning it and the rest of s. Numbers become float64, other
// scalars strings.
func parseFlow(s string) (any, string, error) {
	s = strings.TrimLeft(s, " ")
	switch {
	case strings.HasPrefix(s, "{"):
		m := map[string]any{}
		s = s[1:]
		for {
			s = strings.TrimLeft(s, " ,")
			if strings.HasPrefix(s, "}") {
				return m, s[1:], nil
			}
			k, rest, ok := strings.Cut(s, ":")
			if !ok {
				return nil, "", fmt.Errorf("no ':' in %q", s)
			}
			v, rest, err := parseFlow(rest)
			if err != nil {
				return nil, "", err
			}
			m[strings.TrimSpace(k)], s = v, rest
		}
	case strings.HasPrefix(s, "["):
		var l []any
		s = s[1:]
		for {
			s = strings.TrimLeft(s, " ,")
			if strings.HasPrefix(s, "]") {
				return l, s[1:], nil
			}
			v, rest, err := parseFlow(s)
			if err != nil {
				return nil, "", err
			}
			l, s = append(l, v), rest
		}
	case strings.HasPrefix(s, `"`):
		for i := 1; i < len(s); i++ {
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				v, err := strconv.Unquote(s[:i+1])
				return v, s[i+1:], err
			}
		}
		return nil, "", fmt.Errorf("unterminated string %q", s)
	}
	end := strings.IndexAny(s, ",}]")
	if end < 0 {
		end = len(s)
	}
	word := strings.TrimSpace(s[:end])
	if f, err := strconv.ParseFloat(word, 64); err == nil {
		return f, s[end:], nil
	}
	if word == "" {
		return nil, "", fmt.Errorf("empty value in %q", s)
	}
	return word, s[end:], nil
}
