package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// TrialEnv names, in a new binary's environment, the trial file it reports
// its health to.
const TrialEnv = "FIELDWATCH_UPDATE_TRIAL"

// Trial is the hand-over from the running binary to a new one. The running
// gateway has stopped cleanly (buses stopped, buffer closed, ports let go)
// and starts the new binary as its child, with its own arguments; the
// child runs as the gateway and writes <trial file>.ok once its uplink is
// connected and every device that worked before has given a reading. Then
// the link is pointed at the new binary; else — it exited, or the grace
// period passed — the link is left alone and the new binary removed. In
// both cases the child is stopped cleanly and the process replaces itself
// with whatever the link names (Run returns its path for syscall.Exec),
// keeping its process id under systemd. A new binary that exits at start
// therefore cannot keep the gateway down: the old one decides.
type Trial struct {
	Dir     string // fleet.dir
	Link    string
	Binary  string // the new binary
	Version string // the new binary's
	From    string // the version running
	Serial  uint64
	Devices []string
	Grace   time.Duration
	Log     *slog.Logger
}

// SwapError is what the gateway's Run returns to hand over to a trial.
type SwapError struct{ Trial *Trial }

func (e *SwapError) Error() string {
	return fmt.Sprintf("stopped to try release %s (%s)", e.Trial.Version, e.Trial.Binary)
}

type trialFile struct {
	Version string   `json:"version"`
	Serial  uint64   `json:"serial"`
	Devices []string `json:"devices,omitempty"`
}

// stopWait bounds a child's clean stop before it is killed.
const stopWait = 30 * time.Second

// Run tries the new binary with args (the gateway's own, without argv[0])
// and returns the path to exec next: the link, switched or not. An error
// means nothing can be exec'ed (ctx ended: the gateway is being stopped).
func (t *Trial) Run(ctx context.Context, args []string) (string, error) {
	file := filepath.Join(t.Dir, "trial.json")
	os.Remove(file + ".ok")
	if err := writeJSON(file, trialFile{Version: t.Version, Serial: t.Serial, Devices: t.Devices}); err != nil {
		return t.finish(false, fmt.Sprintf("cannot write the trial file: %v", err), nil)
	}
	cmd := exec.Command(t.Binary, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(withoutTrial(os.Environ()), TrialEnv+"="+file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return t.finish(false, fmt.Sprintf("cannot start the new binary: %v", err), nil)
	}
	t.Log.Info("new binary on trial", "version", t.Version, "pid", cmd.Process.Pid, "grace", t.Grace)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(t.Grace)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			stop(cmd, exited)
			return "", ctx.Err() // the next start rolls back (update.json says trying)
		case <-exited:
			return t.finish(false, fmt.Sprintf("the new binary %s after %v", exitText(cmd.ProcessState),
				time.Since(started).Round(time.Millisecond)), nil)
		case <-deadline.C:
			return t.finish(false, fmt.Sprintf("the new binary did not become healthy within %v (uplink connected, a reading from every device that worked before)",
				t.Grace), func() { stop(cmd, exited) })
		case <-tick.C:
			if _, err := os.Stat(file + ".ok"); err == nil {
				return t.finish(true, "", func() { stop(cmd, exited) })
			}
		}
	}
}

func exitText(ps *os.ProcessState) string {
	if ps == nil {
		return "ended"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "was killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exited with status %d", ps.ExitCode())
}

// stop ends the child cleanly (SIGTERM: buffer closed, offline announced),
// killing it after stopWait.
func stop(cmd *exec.Cmd, exited chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopWait):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// finish commits or rolls back, records it in update.json and returns the
// link to exec. stopChild, if set, stops the child after the link is
// switched (so a power cut in between leaves the new binary in force, as
// decided) and before the record is written.
func (t *Trial) finish(ok bool, reason string, stopChild func()) (string, error) {
	var rec record
	path := filepath.Join(t.Dir, "update.json")
	if err := readJSON(path, &rec); err != nil {
		t.Log.Error("update state unreadable", "err", err)
	}
	rec.Pending = nil
	now := time.Now().UTC()
	if ok {
		old, _ := filepath.EvalSymlinks(t.Link)
		if err := switchLink(t.Link, t.Binary); err != nil {
			ok, reason = false, fmt.Sprintf("cannot point %s at the new binary: %v", t.Link, err)
		} else {
			rec.Previous, rec.PreviousBinary = t.From, old
			rec.Error, rec.ErrorAt, rec.ErrorSerial = "", time.Time{}, 0
			removeOld(filepath.Dir(t.Link), t.Binary, old)
		}
	}
	if stopChild != nil {
		stopChild()
	}
	if !ok {
		reason = telemetry.CutText(reason, telemetry.MaxConfigErrorLen)
		rec.Rollback = &telemetry.UpdateRollback{From: t.Version, To: t.From, Serial: t.Serial, At: now, Reason: reason}
		rec.Error, rec.ErrorAt, rec.ErrorSerial = reason, now, t.Serial
		os.Remove(t.Binary)
		t.Log.Error("release rolled back: the previous binary runs again", "version", t.Version, "back_to", t.From,
			"reason", reason)
	} else {
		t.Log.Info("release passed its trial; running it", "version", t.Version, "previous", t.From)
	}
	if err := writeJSON(path, rec); err != nil {
		t.Log.Error("cannot write update state", "err", err)
	}
	os.Remove(filepath.Join(t.Dir, "trial.json"))
	os.Remove(filepath.Join(t.Dir, "trial.json.ok"))
	return t.Link, nil
}

// switchLink points link at target atomically: a new link renamed over it.
func switchLink(link, target string) error {
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(link)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// removeOld deletes the release binaries in dir other than keep.
func removeOld(dir string, keep ...string) {
	old, _ := filepath.Glob(filepath.Join(dir, "fieldwatch-gateway-*"))
	for _, f := range old {
		if !slices.Contains(keep, f) {
			os.Remove(f)
		}
	}
}

func withoutTrial(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(e string) bool { return strings.HasPrefix(e, TrialEnv+"=") })
}

// Exec replaces the process with path, given args (without argv[0]) and
// the environment without the trial's variable; it returns only on error.
func Exec(path string, args []string) error {
	return syscall.Exec(path, append([]string{path}, args...), withoutTrial(os.Environ()))
}

// watchTrial is the new binary's side of a trial: once its uplink is
// connected and every device of the trial file gave a reading since it
// started, it writes the trial file's .ok.
func watchTrial(ctx context.Context, file string, host Host, log *slog.Logger) {
	var tf trialFile
	if err := readJSON(file, &tf); err != nil {
		log.Error("cannot read the trial file; the old binary will roll this one back", "file", file, "err", err)
		return
	}
	since := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		devs, connected := host.Health()
		if !connected {
			continue
		}
		read := map[string]bool{}
		present := map[string]bool{}
		for _, d := range devs {
			present[d.ID] = true
			read[d.ID] = d.LastRead.After(since)
		}
		if slices.ContainsFunc(tf.Devices, func(id string) bool { return present[id] && !read[id] }) {
			continue
		}
		if err := writeJSON(file+".ok", struct {
			Version string    `json:"version"`
			At      time.Time `json:"at"`
		}{tf.Version, time.Now().UTC()}); err != nil {
			log.Error("cannot report the trial healthy", "err", err)
			continue
		}
		log.Info("healthy on trial: uplink connected, every device read", "version", tf.Version)
		return
	}
}

var _ error = (*SwapError)(nil)

// IsSwap returns the trial err hands over to, if it does.
func IsSwap(err error) (*Trial, bool) {
	var se *SwapError
	if errors.As(err, &se) {
		return se.Trial, true
	}
	return nil, false
}
