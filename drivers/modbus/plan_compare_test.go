package modbus_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	profiles "github.com/fieldwatch/fieldwatch/firmware-profiles"
)

type span struct{ addr, words int }

func spans(fields []modbus.Field) []span {
	out := make([]span, len(fields))
	for i, f := range fields {
		out[i] = span{int(f.Address), f.Type.Words()}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].addr < out[j].addr })
	return out
}

// minRequests is the true minimum number of reads covering fields of one
// table, none longer than maxRegs, none reading through a gap wider than
// gap: a dynamic programme over the fields in address order (an optimal
// cover uses consecutive runs of them, as each read is a range).
func minRequests(fields []modbus.Field, gap, maxRegs int) int {
	s := spans(fields)
	best := make([]int, len(s)+1)
	for i := 1; i <= len(s); i++ {
		best[i] = 1 << 30
		end := 0
		for j := i - 1; j >= 0; j-- { // fields j..i-1 in one read
			start := s[j].addr
			end = max(end, s[j].addr+s[j].words)
			ok := end-start <= maxRegs
			reach := s[j].addr + s[j].words
			for k := j + 1; k < i && ok; k++ {
				ok = s[k].addr-reach <= gap
				reach = max(reach, s[k].addr+s[k].words)
			}
			if ok {
				best[i] = min(best[i], best[j]+1)
			}
		}
	}
	return best[len(s)]
}

// telegrafMaxInsert is how many reads Telegraf's Modbus input sends with
// optimization = "max_insert" for one slave and register type: one greedy
// pass over the fields in address order, starting a new request when the
// hole after the previous field exceeds the fill or the request would pass
// 125 registers (plugins/inputs/modbus/request.go, optimizeGroupWithinLimits).
func telegrafMaxInsert(fields []modbus.Field, fill, maxBatch int) int {
	s := spans(fields)
	if len(s) == 0 {
		return 0
	}
	n, length := 1, s[0].words
	start := s[0].addr
	for i := 1; i < len(s); i++ {
		hole := s[i].addr - (s[i-1].addr + s[i-1].words)
		if hole < 0 {
			hole = 0
		}
		if hole > fill || length+hole+s[i].words > maxBatch {
			n++
			start, length = s[i].addr, s[i].words
			continue
		}
		length = s[i].addr + s[i].words - start
	}
	return n
}

// telegrafNone is Telegraf's default (no optimisation): contiguous runs only.
func telegrafNone(fields []modbus.Field) int {
	return telegrafMaxInsert(fields, 0, modbus.MaxReadRegisters)
}

func randomFields(rng *rand.Rand) []modbus.Field {
	types := []modbus.Type{modbus.Uint16, modbus.Int16, modbus.Uint32, modbus.Float32, modbus.Float64}
	n := 1 + rng.IntN(30)
	fields := make([]modbus.Field, n)
	for i := range fields {
		fields[i] = modbus.Field{Address: uint16(rng.IntN(400)), Type: types[rng.IntN(len(types))]}
		fields[i].Normalize()
	}
	return fields
}

// TestPlanIsMinimal compares the planner with the true minimum on random
// maps at several gap limits.
func TestPlanIsMinimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 3000; i++ {
		fields := randomFields(rng)
		for _, gap := range []int{0, 3, 10, 50} {
			got := len(modbus.Plan(fields, gap, 0))
			if want := minRequests(fields, gap, modbus.MaxReadRegisters); got != want {
				t.Fatalf("map %d gap %d: %d requests, the minimum is %d: %+v", i, gap, got, want, spans(fields))
			}
			for _, r := range modbus.Plan(fields, gap, 0) {
				if r.Count < 1 || r.Count > modbus.MaxReadRegisters {
					t.Fatalf("a request of %d registers", r.Count)
				}
			}
		}
	}
}

// TestRequestsVersusTelegraf counts the reads of one poll of every shipped
// profile: ours as shipped (each profile's max_gap) and with a fill of 50,
// and Telegraf's "none" and "max_insert" (fill 50, its default). Ours never
// sends more than Telegraf at the same fill. The table is in
// docs/benchmarks.md; run with -v to see it.
func TestRequestsVersusTelegraf(t *testing.T) {
	set, err := profiles.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| profile | fields | ours (profile's max_gap) | Telegraf none | ours, fill 50 | Telegraf max_insert, fill 50 |\n|---|---|---|---|---|---|\n")
	var tot [4]int
	for _, m := range set.ModbusModels() {
		p, _ := set.Get(m)
		fs := p.Modbus.Fields
		byTable := map[modbus.Table][]modbus.Field{}
		for _, f := range fs {
			byTable[f.Table] = append(byTable[f.Table], f)
		}
		var row [4]int
		for _, tf := range byTable { // Telegraf groups per register type too
			row[1] += telegrafNone(tf)
			row[3] += telegrafMaxInsert(tf, 50, modbus.MaxReadRegisters)
		}
		row[0] = len(modbus.Plan(fs, p.Modbus.MaxGap, 0))
		row[2] = len(modbus.Plan(fs, 50, 0))
		if row[2] > row[3] || row[0] > row[1] {
			t.Errorf("%s: ours %v sends more than Telegraf", m, row)
		}
		for i := range tot {
			tot[i] += row[i]
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", m, len(fs), row[0], row[1], row[2], row[3])
	}
	fmt.Fprintf(&b, "| **all %d profiles** | | **%d** | **%d** | **%d** | **%d** |\n", len(set.ModbusModels()), tot[0], tot[1], tot[2], tot[3])
	t.Log(b.String())
}
