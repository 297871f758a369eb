package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// memory is a process's resident memory from /proc/<pid>/status, in kB:
// VmRSS now and VmHWM, the peak since it started.
type memory struct{ rss, hwm int }

func (m memory) String() string {
	return fmt.Sprintf("VmRSS %.1f MB, VmHWM %.1f MB", mb(m.rss), mb(m.hwm))
}

// mb converts kB, as /proc reports them, to MB (10^6 bytes).
func mb(kb int) float64 { return float64(kb) * 1024 / 1e6 }

func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmRSS":
			m.rss = kb
		case "VmHWM":
			m.hwm = kb
		}
	}
	return m, sc.Err()
}

// childCPU returns the CPU time (user + system, in clock ticks of 10 ms)
// of this process's children by name: the servers and binaries the
// benchmark started.
func childCPU() map[string]int {
	out := map[string]int{}
	me := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime(14) stime(15): comm may hold spaces.
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 13 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != me {
			continue
		}
		ut, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		out[s[open+1:end]] += ut + st
	}
	return out
}

// cpuSince formats the CPU seconds each child used since before.
func cpuSince(before map[string]int, secs float64) string {
	var parts []string
	for name, t := range childCPU() {
		used := float64(t-before[name]) / 100
		parts = append(parts, fmt.Sprintf("%s %.1f s (%.0f %% of a core)", name, used, 100*used/secs))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// selfCPU is cpu (cpuSince) with this process's own share since before:
// the raw path's writers, the MQTT publishers or the generated gateways.
func selfCPU(cpu string, before cpuTicks, secs float64) string {
	used := float64(readCPUTicks().self-before.self) / 100
	return fmt.Sprintf("%s, the benchmark (clients) %.1f s (%.0f %% of a core)", cpu, used, 100*used/secs)
}

// cpuTicks is the machine's busy CPU time (every CPU, /proc/stat) and this
// process's own (/proc/self/stat), in clock ticks of 10 ms.
type cpuTicks struct{ busy, self int }

func readCPUTicks() cpuTicks {
	var t cpuTicks
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
		for i, v := range f[1:] {
			if n, err := strconv.Atoi(v); err == nil && i != 3 && i != 4 && i < 8 {
				t.busy += n
			}
		}
	}
	if data, err := os.ReadFile("/proc/self/stat"); err == nil {
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) >= 13 {
			ut, _ := strconv.Atoi(f[11])
			st, _ := strconv.Atoi(f[12])
			t.self = ut + st
		}
	}
	return t
}

// otherLoad is how much of a core, on average over secs, went to processes
// the benchmark did not start: the machine's busy time since before less
// this process's and its children's (children: childCPU at that time).
func otherLoad(before cpuTicks, children map[string]int, secs float64) float64 {
	now := readCPUTicks()
	ours := now.self - before.self
	for name, t := range childCPU() {
		ours += t - children[name]
	}
	return float64(now.busy-before.busy-ours) / 100 / secs
}
