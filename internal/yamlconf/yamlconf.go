// Package yamlconf decodes YAML configuration strictly and reports every
// problem with the file, line and field it concerns.
//
// It is shared by the gateway config, the cloud config and the firmware
// profiles: a field technician who mistypes "intreval" in gateway.yaml gets
//
//	gateway.yaml:14: buses[0].devices[1].intreval: unknown field (did you mean "interval"?)
//
// rather than a silently ignored key or a Go type name.
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem in a YAML document, located by line and field path.
type FieldError struct {
	File  string // file name as given to Decode
	Line  int    // 1-based line, 0 when unknown
	Field string // dotted path such as buses[0].devices[1].interval; empty for the document
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is the list of problems found in one document. It is returned as an
// error only when non-empty.
type Errors []*FieldError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Validator is implemented by configuration types that check their values
// after decoding. Problems are reported on r with the field path they concern.
type Validator interface {
	Validate(r *Report)
}

// Report collects validation problems by field path; Decode turns the paths
// into line numbers.
type Report struct {
	problems []problem
}

type problem struct{ field, msg string }

// Errorf records a problem with the field at path (for example
// "buses[0].devices[1].interval").
func (r *Report) Errorf(path, format string, args ...any) {
	r.problems = append(r.problems, problem{path, fmt.Sprintf(format, args...)})
}

// Len reports how many problems were recorded.
func (r *Report) Len() int { return len(r.problems) }

// Join builds a child path: Join("buses", 0, "devices") = "buses[0].devices".
func Join(parts ...any) string {
	var b strings.Builder
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		case string:
			if v == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		default:
			panic(fmt.Sprintf("BUG: yamlconf.Join: unexpected part %T", p))
		}
	}
	return b.String()
}

// MaxSize bounds the documents Decode accepts.
const MaxSize = 4 << 20

// Decode parses data (named file in messages) into v, which must be a
// pointer to a struct. Unknown keys, type mismatches, durations without a
// unit and several documents in one file are errors. If v implements
// Validator, Validate runs after a clean decode. The error, if any, is
// Errors.
func Decode(file string, data []byte, v any) error {
	if len(data) > MaxSize {
		return Errors{{File: file, Msg: fmt.Sprintf("file is %d bytes, larger than the %d-byte limit", len(data), MaxSize)}}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return Errors{{File: file, Msg: "file is empty"}}
		}
		return Errors{syntaxError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		return Errors{{File: file, Line: line, Msg: "more than one YAML document; put everything in one"}}
	}
	idx := &index{file: file, lines: map[string]int{}}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("BUG: yamlconf.Decode needs a pointer to a struct")
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	idx.walk(doc, rv.Elem().Type(), "")
	if len(idx.errs) > 0 {
		return idx.errs
	}
	if err := doc.Decode(v); err != nil {
		return idx.typeErrors(err)
	}
	if val, ok := v.(Validator); ok {
		var r Report
		val.Validate(&r)
		if len(r.problems) > 0 {
			errs := make(Errors, 0, len(r.problems))
			for _, p := range r.problems {
				errs = append(errs, &FieldError{File: file, Line: lineOf(idx.lines, p.field), Field: p.field, Msg: p.msg})
			}
			return errs
		}
	}
	return nil
}

// Err returns the problems recorded on r as Errors located in data (the
// document they concern), or nil. It serves checks that run after Decode,
// such as those needing other files.
func (r *Report) Err(file string, data []byte) error {
	if len(r.problems) == 0 {
		return nil
	}
	lines := Lines(data)
	errs := make(Errors, 0, len(r.problems))
	for _, p := range r.problems {
		errs = append(errs, &FieldError{File: file, Line: lineOf(lines, p.field), Field: p.field, Msg: p.msg})
	}
	return errs
}

// Lines returns the field path → line index of data.
func Lines(data []byte) map[string]int {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil
	}
	idx := &index{lines: map[string]int{}}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	idx.record(doc, "")
	return idx.lines
}

var lineRE = regexp.MustCompile(`line (\d+)(?:, column (\d+))?: (.*)`)

func syntaxError(file string, err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &FieldError{File: file, Line: n, Msg: m[3]}
	}
	return &FieldError{File: file, Msg: msg}
}

// index walks the node tree beside the Go type, checks keys, and remembers
// the line of every field path.
type index struct {
	file  string
	lines map[string]int    // path → line
	paths map[int]string    // line → first value path on it
	at    map[[2]int]string // line and column → the value's path
	errs  Errors
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	unmarshalerT = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	nodeType     = reflect.TypeOf(yaml.Node{})
)

func (ix *index) record(n *yaml.Node, path string) {
	ix.note(n.Line, path)
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			ix.note(n.Content[i].Line, Join(path, n.Content[i].Value))
			ix.record(n.Content[i+1], Join(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			ix.record(c, path+fmt.Sprintf("[%d]", i))
		}
	}
}

// note remembers path's line, and for each line the deepest path on it, so a
// type error reported by line can name its field.
func (ix *index) note(line int, path string) {
	if _, ok := ix.lines[path]; !ok {
		ix.lines[path] = line
	}
	if ix.paths == nil {
		ix.paths = map[int]string{}
	}
	if old, ok := ix.paths[line]; !ok || len(path) > len(old) {
		ix.paths[line] = path
	}
}

func (ix *index) errorf(n *yaml.Node, path, format string, args ...any) {
	ix.errs = append(ix.errs, &FieldError{File: ix.file, Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (ix *index) walk(n *yaml.Node, t reflect.Type, path string) {
	ix.note(n.Line, path)
	if ix.at == nil {
		ix.at = map[[2]int]string{}
	}
	ix.at[[2]int{n.Line, n.Column}] = path
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType || reflect.PointerTo(t).Implements(unmarshalerT) {
		ix.record(n, path)
		return
	}
	if t == durationType && n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") && n.Value != "0" {
		ix.errorf(n, path, "%q has no unit; write a duration such as %ss or %sms", n.Value, n.Value, n.Value)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return
			}
			ix.errorf(n, path, "expected a mapping of fields, found %s", kindName(n))
			return
		}
		fields := structFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := Join(path, k.Value)
			if k.Value == "<<" {
				ix.walk(val, t, path)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				ix.errorf(k, p, "unknown field%s", suggest(k.Value, fields))
				continue
			}
			if seen[k.Value] {
				ix.errorf(k, p, "field given twice")
				continue
			}
			seen[k.Value] = true
			ix.note(k.Line, p)
			ix.walk(val, ft, p)
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return
		}
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return
			}
			ix.errorf(n, path, "expected a list, found %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			ix.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return
			}
			ix.errorf(n, path, "expected a mapping, found %s", kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := Join(path, k.Value)
			ix.note(k.Line, p)
			ix.walk(n.Content[i+1], t.Elem(), p)
		}
	default:
		if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
			ix.errorf(n, path, "expected a single value, found %s", kindName(n))
		}
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// structFields maps YAML keys to field types, following inline structs.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range structFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func suggest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 1<<30
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
		if d := distance(key, name); d < bestD {
			best, bestD = name, d
		}
	}
	if best != "" && bestD <= max(2, len(key)/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sort.Strings(names)
	return " (known fields: " + strings.Join(names, ", ") + ")"
}

// distance is the Levenshtein edit distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// typeErrors turns yaml.v3's "line N: cannot unmarshal ..." into FieldErrors.
func (ix *index) typeErrors(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Errors{{File: ix.file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	errs := make(Errors, 0, len(te.Errors))
	for _, s := range te.Errors {
		fe := &FieldError{File: ix.file, Msg: s}
		if m := lineRE.FindStringSubmatch(s); m != nil {
			fe.Line, _ = strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			fe.Msg = friendlyType(m[3])
			var ok bool
			if fe.Field, ok = ix.at[[2]int{fe.Line, col}]; !ok {
				fe.Field = ix.paths[fe.Line]
			}
		}
		errs = append(errs, fe)
	}
	return errs
}

var unmarshalRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (.+)$")

func friendlyType(msg string) string {
	m := unmarshalRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	want := m[3]
	switch {
	case strings.Contains(want, "int"):
		want = "a whole number"
	case strings.Contains(want, "float"):
		want = "a number"
	case want == "bool":
		want = "true or false"
	case want == "string":
		want = "text"
	case want == "time.Duration":
		want = "a duration such as 5s"
	}
	return fmt.Sprintf("%q is not %s", m[2], want)
}

// lineOf finds the line for a validation path, falling back to the nearest
// ancestor that appears in the document (a missing field is reported at its
// parent).
func lineOf(lines map[string]int, path string) int {
	for p := path; ; {
		if l, ok := lines[p]; ok {
			return l
		}
		if p == "" {
			return 0
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			p = ""
		} else {
			p = p[:i]
		}
	}
}
