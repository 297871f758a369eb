package rollout

import (
	"fmt"
	"slices"
	"testing"
)

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("gw-%02d", i)
	}
	return out
}

func TestPlan(t *testing.T) {
	f := func(n int, canary string, waves int, want []int) {
		t.Helper()
		c, err := ParseShare(canary)
		if err != nil {
			t.Fatal(err)
		}
		steps := Plan(ids(n), "r1", c, waves)
		var sizes []int
		var all []string
		for _, s := range steps {
			sizes = append(sizes, len(s))
			all = append(all, s...)
		}
		if !slices.Equal(sizes, want) {
			t.Errorf("%d gateways, canary %s, %d waves: steps of %v; want %v", n, canary, waves, sizes, want)
		}
		slices.Sort(all)
		if !slices.Equal(all, ids(n)) {
			t.Errorf("%d gateways, canary %s, %d waves: the steps hold %v", n, canary, waves, all)
		}
	}
	f(20, "10%", 2, []int{2, 9, 9})
	f(21, "10%", 2, []int{3, 9, 9}) // 2.1 rounded up
	f(5, "10%", 2, []int{1, 2, 2})  // at least one
	f(1, "10%", 3, []int{1})        // no empty waves
	f(3, "1", 5, []int{1, 1, 1})
	f(10, "100%", 2, []int{10})
	f(7, "2", 2, []int{2, 3, 2})
	f(8, "12.5%", 1, []int{1, 7})
	f(0, "10%", 2, nil)

	a, b := Plan(ids(20), "r1", Share{Percent: 10}, 2), Plan(ids(20), "r1", Share{Percent: 10}, 2)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("the same rollout planned twice: %v, then %v", a, b)
	}
	rev := slices.Clone(ids(20))
	slices.Reverse(rev)
	if c := Plan(rev, "r1", Share{Percent: 10}, 2); fmt.Sprint(a) != fmt.Sprint(c) {
		t.Errorf("the order of the ids changed the plan: %v, then %v", a, c)
	}
	if c := Plan(ids(20), "r2", Share{Percent: 10}, 2); fmt.Sprint(a[0]) == fmt.Sprint(c[0]) {
		t.Errorf("another rollout has the same canaries %v", a[0])
	}
}

func TestShare(t *testing.T) {
	f := func(s string, n int, up bool, want int) {
		t.Helper()
		sh, err := ParseShare(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got := sh.Of(n, up); got != want {
			t.Errorf("%s of %d (up %v): got %d; want %d", s, n, up, got, want)
		}
		if again, err := ParseShare(sh.String()); err != nil || again != sh {
			t.Errorf("%q: its text %q reads as %+v, %v", s, sh.String(), again, err)
		}
	}
	f("10%", 20, true, 2)
	f("10%", 19, true, 2)
	f("10%", 19, false, 1)
	f("0", 20, false, 0)
	f("3", 2, false, 2)
	f(" 25 % ", 4, false, 1)
	f("0.01%", 10000, false, 1)
	for _, bad := range []string{"", "%", "-1", "101%", "1.005%", "ten", "NaN%", "1e3", "5%%", "0x10"} {
		if _, err := ParseShare(bad); err == nil {
			t.Errorf("%q read as a share", bad)
		}
	}
}

func TestParseSelector(t *testing.T) {
	l, err := ParseSelector(" county=laoshan, kind:river ")
	if err != nil || len(l) != 2 || l["county"] != "laoshan" || l["kind"] != "river" {
		t.Fatalf("got %v, %v", l, err)
	}
	if s := FormatSelector(l); s != "county=laoshan,kind=river" {
		t.Errorf("formatted as %q", s)
	}
	for _, bad := range []string{"", "county", "county=", "=x", "county=a,county=b", "县=崂山", "a=b,,c=d", "a=b c"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("%q read as a selector", bad)
		}
	}
}

func FuzzParseShare(f *testing.F) {
	for _, s := range []string{"10%", "3", "12.5%", "0", "100%", " 7 ", "1e2%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := ParseShare(s)
		if err != nil {
			return
		}
		again, err := ParseShare(sh.String())
		if err != nil || again != sh {
			t.Fatalf("%q read as %+v, whose text %q reads as %+v, %v", s, sh, sh.String(), again, err)
		}
		for _, n := range []int{0, 1, 7, 20, 1000} {
			if k := sh.Of(n, true); k < 0 || k > n || k < sh.Of(n, false) {
				t.Fatalf("%q of %d: %d up, %d down", s, n, k, sh.Of(n, false))
			}
		}
	})
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"county=laoshan,kind=river", "a:b", " x = y ", "a=b,a=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseSelector(s)
		if err != nil {
			return
		}
		again, err := ParseSelector(FormatSelector(l))
		if err != nil || FormatSelector(again) != FormatSelector(l) || len(again) != len(l) {
			t.Fatalf("%q read as %v, whose text %q reads as %v, %v", s, l, FormatSelector(l), again, err)
		}
	})
}
