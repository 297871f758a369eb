package yamlconf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type device struct {
	ID       string        `yaml:"id"`
	Interval time.Duration `yaml:"interval"`
	Unit     int           `yaml:"unit"`
}

type bus struct {
	Name    string   `yaml:"name"`
	Devices []device `yaml:"devices"`
}

type common struct {
	Site string `yaml:"site"`
}

type doc struct {
	common `yaml:",inline"`
	ID     string            `yaml:"id"`
	Buses  []bus             `yaml:"buses"`
	Size   ByteSize          `yaml:"size"`
	Labels map[string]string `yaml:"labels"`
	Limits struct {
		Soft ByteSize `yaml:"soft"`
		Hard ByteSize `yaml:"hard"`
	} `yaml:"limits"`
}

func (d *doc) Validate(r *Report) {
	for i, b := range d.Buses {
		for j, dev := range b.Devices {
			if dev.Interval <= 0 {
				r.Errorf(Join("buses", i, "devices", j, "interval"), "must be positive")
			}
			if dev.Unit < 1 || dev.Unit > 247 {
				r.Errorf(Join("buses", i, "devices", j, "unit"), "must be 1..247, got %d", dev.Unit)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	const good = `id: gw1
site: farm
size: 64MiB
labels: {a: b}
buses:
  - name: b1
    devices:
      - id: d1
        interval: 5s
        unit: 1
`
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error, in order; nil means no error
	}{
		{"good", good, nil},
		{"typo suggests", strings.Replace(good, "interval: 5s", "intreval: 5s", 1),
			[]string{"x.yaml:9: buses[0].devices[0].intreval: unknown field (did you mean \"interval\"?)"}},
		{"unknown lists fields", strings.Replace(good, "site: farm", "zzzzzz: farm", 1),
			[]string{"x.yaml:2: zzzzzz: unknown field (known fields: buses, id, labels, limits, site, size)"}},
		{"duration without unit", strings.Replace(good, "interval: 5s", "interval: 5", 1),
			[]string{"x.yaml:9: buses[0].devices[0].interval: \"5\" has no unit"}},
		{"bad duration", strings.Replace(good, "interval: 5s", "interval: soon", 1),
			[]string{"x.yaml:9: buses[0].devices[0].interval: \"soon\" is not a duration"}},
		{"bad int", strings.Replace(good, "unit: 1", "unit: one", 1),
			[]string{"x.yaml:10: buses[0].devices[0].unit: \"one\" is not a whole number"}},
		{"bad size", strings.Replace(good, "size: 64MiB", "size: lots", 1),
			[]string{"x.yaml:3: size: \"lots\" is not a size such as 64MiB"}},
		{"bad size on a shared line names its field", good + "limits: {soft: 1MiB, hard: lots}\n",
			[]string{"x.yaml:11: limits.hard: \"lots\" is not a size"}},
		{"validation names line", strings.Replace(good, "unit: 1", "unit: 300", 1),
			[]string{"x.yaml:10: buses[0].devices[0].unit: must be 1..247, got 300"}},
		{"missing field reported at parent", strings.Replace(good, "        interval: 5s\n", "", 1),
			[]string{"x.yaml:8: buses[0].devices[0].interval: must be positive"}},
		{"list where mapping expected", strings.Replace(good, "labels: {a: b}", "labels: [a]", 1),
			[]string{"x.yaml:4: labels: expected a mapping, found a list"}},
		{"duplicate key", good + "id: again\n", []string{"x.yaml:11: id: field given twice"}},
		{"two documents", good + "---\nid: x\n", []string{"more than one YAML document"}},
		{"syntax", "id: [unclosed\n", []string{"x.yaml:"}},
		{"empty", "", []string{"x.yaml: file is empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			err := Decode("x.yaml", []byte(tc.in), &d)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if d.Site != "farm" || d.Size != 64<<20 || d.Buses[0].Devices[0].Interval != 5*time.Second {
					t.Fatalf("decoded wrong: %+v", d)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{"0", 0, false}, {"1024", 1024, false}, {"512KiB", 512 << 10, false}, {"64MiB", 64 << 20, false},
		{"2 GiB", 2 << 30, false}, {"10MB", 10e6, false}, {"7B", 7, false},
		{"-1", 0, true}, {"MiB", 0, true}, {"1.5MiB", 0, true}, {"9999999999TiB", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseByteSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, err=%v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if s := ByteSize(64 << 20).String(); s != "64MiB" {
		t.Errorf("String = %q", s)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("id: gw1\nbuses:\n  - name: b\n    devices: [{id: d, interval: 1s, unit: 2}]\n"))
	f.Add([]byte("size: 1KiB\nlabels: {x: y}\n<<: {id: z}\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		err := Decode("f.yaml", data, &d)
		if err != nil && !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
