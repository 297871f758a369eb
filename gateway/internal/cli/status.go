package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/app"
	"github.com/fieldwatch/fieldwatch/gateway/internal/fleet"
	"github.com/fieldwatch/fieldwatch/gateway/internal/update"
)

func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	var g gatewayHTTP
	g.flags(fs)
	asJSON := fs.Bool("json", false, "print the raw JSON")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	body, code := g.call(ctx, http.MethodGet, "/status", nil, stderr)
	if code != ExitOK {
		return code
	}
	if *asJSON {
		stdout.Write(body)
		return ExitOK
	}
	var s app.Status
	if err := json.Unmarshal(body, &s); err != nil {
		fmt.Fprintf(stderr, "unexpected status from the gateway: %v\n", err)
		return ExitFail
	}
	printStatus(stdout, s)
	return ExitOK
}

func printStatus(w io.Writer, s app.Status) {
	link := linkWord(s.Connected)
	fmt.Fprintf(w, "gateway  %s (site %s, version %s, up %s)\n", s.Gateway, s.Site, s.Version,
		time.Since(s.Started).Round(time.Second))
	fmt.Fprintf(w, "uplink   %s to %v", link, s.Brokers)
	if s.Uplink.Backlog > 0 {
		fmt.Fprintf(w, " — catching up: %d backlog items draining behind live data", s.Uplink.Backlog)
	}
	if s.Uplink.ClockHold {
		fmt.Fprint(w, " — HOLDING readings until the clock is set (no NTP or GPS yet)")
	}
	if s.Uplink.Rewound > 0 || s.Uplink.NotKept > 0 {
		fmt.Fprintf(w, " — a restored cloud asked for acknowledged items again: %d sent again", s.Uplink.Rewound)
		if s.Uplink.NotKept > 0 {
			fmt.Fprintf(w, ", %d LOST (no longer kept: raise buffer.keep_acked)", s.Uplink.NotKept)
		}
	}
	fmt.Fprintln(w)
	b := s.Buffer
	fmt.Fprintf(w, "buffer   %d readings awaiting ack (%d bytes), acked through seq %d of stream %s",
		b.Readings, b.Bytes, b.AckedThrough, b.Stream)
	if b.Dropped > 0 || b.TruncatedBytes > 0 {
		fmt.Fprintf(w, " — DROPPED %d readings (%d gap events sent upstream), truncated %d bytes", b.Dropped,
			b.GapEvents, b.TruncatedBytes)
	}
	fmt.Fprintln(w)
	if f := s.Fleet; f != nil && (f.Remote || f.Version > 0 || f.Error != "") {
		printFleet(w, f)
	}
	if s.Commands != nil {
		printCommands(w, s.Commands)
	}
	if s.Update != nil {
		printUpdate(w, s.Update)
	}
	if len(s.Devices) > 0 {
		printDevices(w, s.Devices)
	}
	if len(s.Streams) > 0 {
		printStreams(w, s.Streams)
	}
	if len(s.Sources) > 0 {
		printSources(w, s.Sources)
	}
	if len(s.HJ212) > 0 {
		printHJ212(w, s.HJ212)
	}
}

// printHJ212 lists each HJ 212 uplink's cursors: one line per kind of data
// it sends.
func printHJ212(w io.Writer, ups []app.HJ212Status) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HJ 212 UPLINK	PLATFORM	MN	LINK	KIND	CONFIRMED THROUGH	PENDING	DROPPED")
	for _, u := range ups {
		for _, k := range u.Kinds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", u.Name, u.Address, u.MN, linkWord(u.Connected), k.Kind,
				k.Confirmed, k.Pending, k.Dropped)
		}
	}
	tw.Flush()
}

// linkWord says whether a link is up, loud when it is not.
func linkWord(connected bool) string {
	if connected {
		return "connected"
	}
	return "DISCONNECTED"
}

func printDevices(w io.Writer, devices []app.DeviceStatus) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tBUS\tUNIT\tPROFILE\tEVERY\tHEALTH\tLAST GOOD\tREQS\tTIMEOUTS\tCRC\tEXCEPTIONS\tLATENCY avg/max\tERROR")
	for _, d := range devices {
		last := "never"
		if !d.LastGood.IsZero() {
			last = time.Since(d.LastGood).Round(time.Second).String() + " ago"
		}
		health := d.Health
		if !d.QuarantinedUntil.IsZero() {
			health += " until " + d.QuarantinedUntil.Local().Format("15:04:05")
		}
		st := d.Stats
		exc := "-"
		if len(st.Exceptions) > 0 {
			exc = fmt.Sprint(st.Exceptions)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s/%s\t%s\n", d.ID, d.Bus, d.Unit, d.Profile,
			d.Interval, health, last, st.Requests, st.Timeouts, st.CRCErrors, exc, st.LatencyAvg, st.LatencyMax, d.LastError)
	}
	tw.Flush()
}

func printStreams(w io.Writer, streams []app.StreamStatus) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tON\tPROFILE\tHEALTH\tLAST FRAME\tFRAMES\tREFUSED\tRECONNECTS\tERROR")
	for _, s := range streams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", s.ID, s.Where, s.Profile, s.Health, ago(s.LastFrame),
			s.Frames, counts(s.Errors), s.Reconnects, s.LastError)
	}
	tw.Flush()
}

func printSources(w io.Writer, sources []app.SourceStatus) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MQTT SOURCE\tBROKER\tTOPIC\tPROFILE\tLINK\tLAST MESSAGE\tRECEIVED\tMAPPED\tFILTERED\tREFUSED\tERROR")
	for _, s := range sources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.ID, strings.Join(s.Brokers, ","), s.Topic,
			s.Profile, linkWord(s.Connected), ago(s.LastMsg), s.Received, s.Mapped, s.Filtered, counts(s.Errors), s.LastError)
	}
	tw.Flush()
}

// ago says how long ago t was, or never.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// counts prints error counts by kind, or "-".
func counts(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	kinds := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// printCommands counts the remote commands by result, ok first.
func printCommands(w io.Writer, counts map[string]uint64) {
	fmt.Fprintf(w, "commands %d ok, %d failed", counts["ok"], counts["failed"])
	var refused []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if k != "ok" && k != "failed" {
			refused = append(refused, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	if len(refused) > 0 {
		fmt.Fprintf(w, ", refused: %s", strings.Join(refused, ", "))
	}
	fmt.Fprintln(w)
}

// printUpdate says which release runs, what is pending and what became
// of the last one.
func printUpdate(w io.Writer, u *update.Status) {
	fmt.Fprintf(w, "release  %s", u.Version)
	if u.Previous != "" {
		fmt.Fprintf(w, " (previous %s kept)", u.Previous)
	}
	if u.Pending != "" {
		fmt.Fprintf(w, " — %s %s", u.Pending, u.Phase)
		if u.Phase == update.Downloading && u.Size > 0 {
			fmt.Fprintf(w, " %d%%", u.Downloaded*100/u.Size)
		}
	}
	if r := u.Rollback; r != nil {
		fmt.Fprintf(w, " — ROLLED BACK %s to %s at %s: %s", r.From, r.To, r.At.Format(time.RFC3339), r.Reason)
	}
	if u.Error != "" && (u.Rollback == nil || u.Error != u.Rollback.Reason) {
		fmt.Fprintf(w, " — last release error: %s", u.Error)
	}
	if len(u.Refused) > 0 {
		fmt.Fprintf(w, " — refused: %s", counts(u.Refused))
	}
	fmt.Fprintln(w)
}

// printFleet says which config runs and what became of the last remote one.
func printFleet(w io.Writer, f *fleet.Status) {
	fmt.Fprintf(w, "config   %s", f.Source)
	if f.Version > 0 {
		fmt.Fprintf(w, " version %d", f.Version)
	}
	if f.Checking > 0 {
		fmt.Fprintf(w, " — under its health check")
	}
	if r := f.Rollback; r != nil {
		fmt.Fprintf(w, " — ROLLED BACK version %d to %d at %s: %s", r.From, r.To, r.At.Format(time.RFC3339), r.Reason)
	}
	if f.Error != "" && (f.Rollback == nil || f.Error != f.Rollback.Reason) {
		fmt.Fprintf(w, " — last remote config error (version %d): %s", f.ErrorVersion, f.Error)
	}
	fmt.Fprintln(w)
}
