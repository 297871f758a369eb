package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/rollout"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

const rolloutUsage = `usage: fieldwatch-cloud rollout <command> [flags]

commands:
  create   sign one config per gateway of a group and roll it out through the cloud's API:
           -group county=laoshan,kind=river -version N -config-dir DIR -revert-dir DIR -key FILE
           [-canary 10%] [-waves 2] [-max-failures 0] [-step-timeout 5m] [-api URL] [-token-file FILE]
           DIR and the revert DIR hold one <gateway-id>.yaml per gateway: the new config, and the one
           to go back to on 'rollout rollback' (signed now as version N+1)
           or a gateway release (-kind release), signed now for each gateway of the group:
           -kind release -group … -version SERIAL -release V -artifact TARGET=FILE…
           -revert-release V0 -revert-artifact TARGET=FILE… -key FILE [-url BASE] [the step flags above]
           the binaries are uploaded to the cloud; the revert (serial N+1) names the release to go
           back to on 'rollout rollback'
  list     the rollouts, newest first                    [-api URL] [-token-file FILE]
  show     one rollout, every gateway's status (JSON)    [-api URL] [-token-file FILE] ID
  pause    start no new step                             [-api URL] [-token-file FILE] ID
  resume   go on after a pause                           [-api URL] [-token-file FILE] ID
  rollback publish the reverts to every gateway reached  [-api URL] [-token-file FILE] ID
  cancel   drop a draft                                  [-api URL] [-token-file FILE] ID
`

// rolloutCmd is `fieldwatch-cloud rollout …` (docs/fleet.md#rollouts).
func rolloutCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, rolloutUsage)
		return ExitUsage
	}
	switch args[0] {
	case "create":
		return rolloutCreate(ctx, args[1:], stdout, stderr)
	case "list", "show", "pause", "resume", "rollback", "cancel":
		return rolloutOther(ctx, args[0], args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "fieldwatch-cloud rollout: unknown command %q\n\n%s", args[0], rolloutUsage)
	return ExitUsage
}

// apiFlags are the flags every rollout command takes.
func apiFlags(set *flag.FlagSet) (api, tokenFile *string) {
	return set.String("api", "http://127.0.0.1:8080", "the cloud's HTTP address"),
		set.String("token-file", "", "a file holding an operator API token (or $FIELDWATCH_TOKEN)")
}

// rolloutCreate signs every gateway's config and revert on this machine,
// creates the rollout as a draft, uploads them, and starts it. A gateway
// of the group without a file cancels the draft.
func rolloutCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	set := flag.NewFlagSet("fieldwatch-cloud rollout create", flag.ContinueOnError)
	set.SetOutput(stderr)
	api, tokenFile := apiFlags(set)
	kind := set.String("kind", "config", "what to roll out: config or release")
	group := set.String("group", "", "the gateways' labels, county=laoshan,kind=river (every one must hold)")
	canary := set.String("canary", "10%", "the first step: a share of the group (rounded up) or a count; at least one gateway")
	waves := set.Int("waves", 2, "how many steps share the rest of the group")
	maxFail := set.String("max-failures", "0", "failures a step tolerates (a count or a share of the step); more halt the rollout")
	stepTimeout := set.Duration("step-timeout", 0, "how long a gateway has to report the config healthy (0: the cloud's default, 5m)")
	ver := set.Uint64("version", 0, "the configs' version: higher than any the group's gateways have seen (the reverts take the next)")
	dir := set.String("config-dir", "", "the new configs, one <gateway-id>.yaml per gateway (without a fleet section)")
	revertDir := set.String("revert-dir", "", "what each gateway goes back to on rollback, one <gateway-id>.yaml per gateway")
	keyPath := set.String("key", "", "the signing key (fieldwatch-cloud fleet keygen)")
	var arts, revertArts listFlag
	relVer := set.String("release", "", "-kind release: the release's version, as its binaries report it")
	set.Var(&arts, "artifact", "-kind release: a target's binary, TARGET=FILE (repeat for more)")
	revertVer := set.String("revert-release", "", "-kind release: the release to go back to on rollback")
	set.Var(&revertArts, "revert-artifact", "-kind release: a target's binary of the release to go back to (repeat)")
	relBase := set.String("url", "", "-kind release: the cloud's address as the gateways reach it, for the binaries (default: -api)")
	if code, ok := parseFlags(set, args); !ok {
		return code
	}
	switch {
	case set.NArg() > 0 || *group == "" || *ver == 0 || *keyPath == "":
		fmt.Fprint(stderr, "fieldwatch-cloud rollout create: -group, -version and -key are required\n\n", rolloutUsage)
		return ExitUsage
	case *kind == "config" && (*dir == "" || *revertDir == ""):
		fmt.Fprint(stderr, "fieldwatch-cloud rollout create: -config-dir and -revert-dir are required\n\n", rolloutUsage)
		return ExitUsage
	case *kind == "release" && (*relVer == "" || len(arts) == 0 || *revertVer == "" || len(revertArts) == 0):
		fmt.Fprint(stderr, "fieldwatch-cloud rollout create: -kind release needs -release, -artifact, -revert-release and -revert-artifact\n\n", rolloutUsage)
		return ExitUsage
	case *kind != "config" && *kind != "release":
		fmt.Fprintf(stderr, "fieldwatch-cloud rollout create: -kind %q is not config or release\n", *kind)
		return ExitUsage
	}
	priv, err := readSigningKey(*keyPath, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	var releases [2]telemetry.Release // -kind release: the item and the revert, without gateways
	if *kind == "release" {
		for i, v := range []string{*relVer, *revertVer} {
			if err := telemetry.CheckVersion(v); err != nil {
				fmt.Fprintf(stderr, "-release / -revert-release: %v\n", err)
				return ExitUsage
			}
			releases[i] = telemetry.Release{Version: v, Serial: *ver + uint64(i), Issued: time.Now()}
		}
		if *relBase == "" {
			*relBase = *api
		}
		for i, a := range [][]string{arts, revertArts} {
			if releases[i].Artifacts, err = uploadArtifacts(ctx, a, *api, *relBase, *tokenFile, stdout, stderr); err != nil {
				return exitOf(err)
			}
		}
	}
	spec, _ := json.Marshal(rollout.Spec{Kind: *kind, Selector: *group, Canary: *canary, Waves: *waves,
		MaxFailures: *maxFail, StepTimeout: telemetry.Duration(*stepTimeout), Version: *ver})
	out, code := callAPI(ctx, http.MethodPost, *api, "/api/v1/rollouts", *tokenFile, spec, "the rollout", stderr)
	if code != ExitOK {
		return code
	}
	var r rollout.Rollout
	if err := json.Unmarshal(out, &r); err != nil {
		fmt.Fprintf(stderr, "the cloud's answer is not a rollout: %v\n", err)
		return ExitFail
	}
	base := "/api/v1/rollouts/" + url.PathEscape(r.ID)
	cancel := func(why string) int {
		fmt.Fprintln(stderr, why)
		if _, code := callAPI(ctx, http.MethodPost, *api, base+"/cancel", *tokenFile, nil, "the cancel", stderr); code == ExitOK {
			fmt.Fprintf(stderr, "draft rollout %s cancelled\n", r.ID)
		}
		return ExitFail
	}
	signed := map[string][2][]byte{}
	if *kind == "release" {
		for _, g := range r.Gateways {
			var pair [2][]byte
			for i, rel := range releases {
				rel.Gateways = []string{g.ID}
				if pair[i], err = telemetry.EncodeRelease(telemetry.SignRelease(rel, priv)); err != nil {
					return cancel(fmt.Sprintf("the release for %s: %v", g.ID, err))
				}
			}
			signed[g.ID] = pair
		}
	} else if code := signConfigs(r, *dir, *revertDir, priv, signed, cancel); code != ExitOK {
		return code
	}
	for _, g := range r.Gateways {
		for i, which := range []string{"item", "revert"} {
			if _, code := callAPI(ctx, http.MethodPut, *api, base+"/gateways/"+url.PathEscape(g.ID)+"/"+which, *tokenFile,
				signed[g.ID][i], "the "+which+" for "+g.ID, stderr); code != ExitOK {
				return cancel("the rollout was not started")
			}
		}
	}
	if out, code = callAPI(ctx, http.MethodPost, *api, base+"/start", *tokenFile, nil, "the start", stderr); code != ExitOK {
		return cancel("the rollout was not started")
	}
	steps := make([]int, r.Steps)
	for _, g := range r.Gateways {
		steps[g.Step]++
	}
	what := fmt.Sprintf("config version %d", r.Version)
	if *kind == "release" {
		what = fmt.Sprintf("release %s (serial %d)", *relVer, r.Version)
	}
	fmt.Fprintf(stdout, "rollout %s started: %s to %d gateways (%s), canary %d then waves of %s; reverts at version %d\n",
		r.ID, what, len(r.Gateways), r.Selector, steps[0], strings.Trim(fmt.Sprint(steps[1:]), "[]"), r.RevertVersion)
	return ExitOK
}

// signConfigs signs each gateway's config and revert of r from the files
// in dir and revertDir into signed; a missing file cancels the draft.
func signConfigs(r rollout.Rollout, dir, revertDir string, priv ed25519.PrivateKey, signed map[string][2][]byte,
	cancel func(string) int) int {
	texts := map[string][2]string{}
	var missing []string
	for _, g := range r.Gateways {
		var pair [2]string
		for i, d := range []string{dir, revertDir} {
			b, err := os.ReadFile(filepath.Join(d, g.ID+".yaml"))
			if errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, filepath.Join(d, g.ID+".yaml"))
				continue
			}
			if err != nil {
				return cancel(err.Error())
			}
			pair[i] = string(b)
		}
		texts[g.ID] = pair
	}
	if len(missing) > 0 {
		return cancel(fmt.Sprintf("the group %s has %d gateways, and these files are missing: %s", r.Selector,
			len(r.Gateways), strings.Join(missing, ", ")))
	}
	now := time.Now()
	for _, g := range r.Gateways {
		var pair [2][]byte
		for i, which := range []string{"item", "revert"} {
			env, err := telemetry.EncodeConfig(telemetry.SignConfig(telemetry.ConfigEnvelope{Gateway: g.ID,
				Version: r.Version + uint64(i), Issued: now, Config: texts[g.ID][i]}, priv))
			if err != nil {
				return cancel(fmt.Sprintf("%s for %s: %v", which, g.ID, err))
			}
			pair[i] = env
		}
		signed[g.ID] = pair
	}
	return ExitOK
}

// rolloutOther is list, show, pause, resume, rollback and cancel.
func rolloutOther(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	set := flag.NewFlagSet("fieldwatch-cloud rollout "+cmd, flag.ContinueOnError)
	set.SetOutput(stderr)
	api, tokenFile := apiFlags(set)
	if code, ok := parseFlags(set, args); !ok {
		return code
	}
	if cmd == "list" {
		if set.NArg() != 0 {
			fmt.Fprint(stderr, rolloutUsage)
			return ExitUsage
		}
		out, code := callAPI(ctx, http.MethodGet, *api, "/api/v1/rollouts", *tokenFile, nil, "the list", stderr)
		if code != ExitOK {
			return code
		}
		var l struct {
			Rollouts []rollout.Summary `json:"rollouts"`
		}
		if err := json.Unmarshal(out, &l); err != nil {
			fmt.Fprintf(stderr, "the cloud's answer is not a list of rollouts: %v\n", err)
			return ExitFail
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tVERSION\tGROUP\tSTATE\tSTEP\tGATEWAYS\tBY")
		for _, r := range l.Rollouts {
			var counts []string
			for _, s := range rollout.Statuses {
				if n := r.Gateways[s]; n > 0 {
					counts = append(counts, fmt.Sprintf("%d %s", n, s))
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d/%d\t%s\t%s\n", r.ID, r.Kind, r.Version, r.Selector, r.State, r.Step, r.Steps,
				strings.Join(counts, ", "), r.CreatedBy)
		}
		tw.Flush()
		return ExitOK
	}
	if set.NArg() != 1 {
		fmt.Fprintf(stderr, "usage: fieldwatch-cloud rollout %s [-api URL] [-token-file FILE] ID\n", cmd)
		return ExitUsage
	}
	path, method := "/api/v1/rollouts/"+url.PathEscape(set.Arg(0)), http.MethodPost
	if cmd == "show" {
		method = http.MethodGet
	} else {
		path += "/" + cmd
	}
	out, code := callAPI(ctx, method, *api, path, *tokenFile, nil, "the "+cmd, stderr)
	if code != ExitOK {
		return code
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, out, "", "  ")
	fmt.Fprintln(stdout, pretty.String())
	return ExitOK
}
