package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// listFlag is a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// fleetRelease signs a gateway release on the operator's machine, uploads
// its binaries to the cloud (PUT /api/v1/releases/<sha256>), and publishes
// the manifest to each gateway named (PUT /api/v1/stations/{id}/release),
// retained on its release topic (docs/fleet.md, Binary updates).
func fleetRelease(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	set := flag.NewFlagSet("fieldwatch-cloud fleet release", flag.ContinueOnError)
	set.SetOutput(stderr)
	var gws, arts listFlag
	set.Var(&gws, "gateway", "a gateway to publish the release to (repeat for more)")
	set.Var(&arts, "artifact", "a target's binary, TARGET=FILE, e.g. linux/arm64=dist/fieldwatch-gateway-arm64 (repeat for more)")
	anyGW := set.Bool("any", false, `sign the release for every gateway ("*"), e.g. for a rollout to reuse; published to the -gateway ones`)
	keyPath := set.String("key", "", "the signing key (fieldwatch-cloud fleet keygen)")
	ver := set.String("version", "", "the release's version, as the binaries report it")
	serial := set.Uint64("serial", 0, "the manifest's serial: higher than any release signed before for these gateways")
	api := set.String("api", "http://127.0.0.1:8080", "the cloud's HTTP address")
	base := set.String("url", "", "the cloud's address as the gateways reach it, for the binaries' URLs (default: -api)")
	tokenFile := set.String("token-file", "", "a file holding an operator API token (or $FIELDWATCH_TOKEN)")
	if code, ok := parseFlags(set, args); !ok {
		return code
	}
	if set.NArg() > 0 || len(gws) == 0 || len(arts) == 0 || *keyPath == "" || *ver == "" || *serial == 0 {
		fmt.Fprintln(stderr, "usage: fieldwatch-cloud fleet release -gateway ID… -key FILE -version V -serial N -artifact TARGET=FILE… [-any] [-url BASE] [-api URL] [-token-file FILE]")
		return ExitUsage
	}
	if err := telemetry.CheckVersion(*ver); err != nil {
		fmt.Fprintf(stderr, "-version: %v\n", err)
		return ExitUsage
	}
	if *base == "" {
		*base = *api
	}
	priv, err := readSigningKey(*keyPath, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	rel := telemetry.Release{Version: *ver, Serial: *serial, Issued: time.Now(), Gateways: gws}
	if *anyGW {
		rel.Gateways = []string{telemetry.AnyGateway}
	}
	if rel.Artifacts, err = uploadArtifacts(ctx, arts, *api, *base, *tokenFile, stdout, stderr); err != nil {
		return exitOf(err)
	}
	manifest, err := telemetry.EncodeRelease(telemetry.SignRelease(rel, priv))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	for _, gw := range gws {
		if _, code := callAPI(ctx, http.MethodPut, *api, "/api/v1/stations/"+url.PathEscape(gw)+"/release", *tokenFile,
			manifest, "the release", stderr); code != ExitOK {
			return code
		}
		fmt.Fprintf(stdout, "release %s (serial %d) for %s published on %s, signed by %s\n", *ver, *serial, gw,
			telemetry.ReleaseTopic(gw), telemetry.FormatPublicKey(priv.Public().(ed25519.PublicKey)))
	}
	return ExitOK
}

// usageError is a mistake in the flags (ExitUsage), not a failure.
type usageError struct{ error }

// exitOf is the exit status for err from uploadArtifacts.
func exitOf(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return ExitUsage
	}
	return ExitFail
}

// uploadArtifacts uploads each TARGET=FILE binary to the cloud at api
// (PUT /api/v1/releases/<sha256>) and returns the artifacts a manifest
// names, fetched from base. What went wrong is written to stderr; the
// error says only whether it was a usage mistake (usageError).
func uploadArtifacts(ctx context.Context, arts []string, api, base, tokenFile string, stdout, stderr io.Writer) ([]telemetry.Artifact, error) {
	var out []telemetry.Artifact
	for _, a := range arts {
		target, file, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(stderr, "-artifact %q is not TARGET=FILE\n", a)
			return nil, usageError{errors.New("bad artifact")}
		}
		if err := telemetry.CheckTarget(target); err != nil {
			fmt.Fprintf(stderr, "-artifact: %v\n", err)
			return nil, usageError{err}
		}
		data, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return nil, err
		}
		s := sha256.Sum256(data)
		sum := hex.EncodeToString(s[:])
		// Ten minutes: a 20 MB binary over a slow office link.
		if _, code := callAPIWithin(ctx, 10*time.Minute, http.MethodPut, api, "/api/v1/releases/"+sum, tokenFile, data,
			"the binary "+file, stderr); code != ExitOK {
			return nil, errors.New("upload failed")
		}
		out = append(out, telemetry.Artifact{Target: target,
			URL: strings.TrimSuffix(base, "/") + "/releases/" + sum, Size: int64(len(data)), SHA256: sum})
		fmt.Fprintf(stdout, "%s: %s uploaded (%d bytes, sha256 %s)\n", target, file, len(data), sum)
	}
	return out, nil
}
