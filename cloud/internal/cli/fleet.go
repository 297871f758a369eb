package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/secretfile"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// fleet is `fieldwatch-cloud fleet keygen|push` (docs/fleet.md).
func fleet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "keygen":
			return fleetKeygen(args[1:], stdout, stderr)
		case "push":
			return fleetPush(ctx, args[1:], stdout, stderr)
		case "command":
			return fleetCommand(ctx, args[1:], stdout, stderr)
		case "release":
			return fleetRelease(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, `usage: fieldwatch-cloud fleet <command> [flags]

commands:
  keygen  make a signing key pair (-key FILE): the private key in FILE (mode 0600),
          the public key printed, for the gateways' fleet.trusted_keys
  push    sign a gateway's config and publish it through the cloud's API
          (-gateway ID -config FILE -key FILE -version N [-api URL] [-token-file FILE])
  command sign a remote command, send it through the cloud's API and print the reply
          (-gateway ID -key FILE [-api URL] [-token-file FILE] restart|resend FROM TO|read DEVICE)
  release sign a gateway release, upload its binaries to the cloud and publish it to gateways
          (-gateway ID… -key FILE -version V -serial N -artifact linux/arm64=FILE… [-any]
          [-url BASE] [-api URL] [-token-file FILE])
`)
	return ExitUsage
}

func parseFlags(set *flag.FlagSet, args []string) (int, bool) {
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	return 0, true
}

// fleetKeygen writes a new ed25519 private key (PKCS #8, PEM) to a file of
// mode 0600 that must not exist, and prints the public key's line.
func fleetKeygen(args []string, stdout, stderr io.Writer) int {
	set := flag.NewFlagSet("fieldwatch-cloud fleet keygen", flag.ContinueOnError)
	set.SetOutput(stderr)
	keyPath := set.String("key", "", "file to write the private key to (created with mode 0600; must not exist)")
	if code, ok := parseFlags(set, args); !ok {
		return code
	}
	if set.NArg() > 0 || *keyPath == "" {
		fmt.Fprintln(stderr, "usage: fieldwatch-cloud fleet keygen -key FILE")
		return ExitUsage
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	// O_EXCL: a key is never overwritten (the gateways that trust it
	// would refuse everything signed with its replacement).
	f, err := os.OpenFile(*keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	werr := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := f.Sync(); werr == nil {
		werr = err
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		os.Remove(*keyPath)
		fmt.Fprintln(stderr, werr)
		return ExitFail
	}
	fmt.Fprintf(stdout, "private key written to %s (keep it off the gateways and the cloud)\npublic key, for the gateways' fleet.trusted_keys:\n%s\n",
		*keyPath, telemetry.FormatPublicKey(pub))
	return ExitOK
}

// readSigningKey reads a key fleetKeygen wrote, warning when others can
// read its file.
func readSigningKey(path string, stderr io.Writer) (ed25519.PrivateKey, error) {
	data, loose, err := secretfile.Read(path)
	if err != nil {
		return nil, err
	}
	if loose != nil {
		fmt.Fprintf(stderr, "warning: the signing key %s can be read or changed by %s (mode %04o); chmod 600 it\n",
			path, loose.Who, loose.Mode.Perm())
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PEM PRIVATE KEY block (a key from fieldwatch-cloud fleet keygen)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, not an ed25519 key", path, k)
	}
	return priv, nil
}

// fleetPush signs a config for a gateway and publishes it through the
// running cloud's API (PUT /api/v1/stations/{id}/config), which publishes
// it retained on the gateway's config topic.
func fleetPush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	set := flag.NewFlagSet("fieldwatch-cloud fleet push", flag.ContinueOnError)
	set.SetOutput(stderr)
	gw := set.String("gateway", "", "the gateway id")
	cfgPath := set.String("config", "", "the gateway's config (gateway.yaml, without a fleet section)")
	keyPath := set.String("key", "", "the signing key (fieldwatch-cloud fleet keygen)")
	ver := set.Uint64("version", 0, "the config's version: higher than any pushed to this gateway before")
	api := set.String("api", "http://127.0.0.1:8080", "the cloud's HTTP address")
	tokenFile := set.String("token-file", "", "a file holding an operator API token (or $FIELDWATCH_TOKEN)")
	if code, ok := parseFlags(set, args); !ok {
		return code
	}
	if set.NArg() > 0 || *gw == "" || *cfgPath == "" || *keyPath == "" || *ver == 0 {
		fmt.Fprintln(stderr, "usage: fieldwatch-cloud fleet push -gateway ID -config FILE -key FILE -version N [-api URL] [-token-file FILE]")
		return ExitUsage
	}
	priv, err := readSigningKey(*keyPath, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	text, err := os.ReadFile(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	env, err := telemetry.EncodeConfig(telemetry.SignConfig(telemetry.ConfigEnvelope{Gateway: *gw, Version: *ver,
		Issued: time.Now(), Config: string(text)}, priv))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	if _, code := callAPI(ctx, http.MethodPut, *api, "/api/v1/stations/"+url.PathEscape(*gw)+"/config", *tokenFile, env,
		"the config", stderr); code != ExitOK {
		return code
	}
	fmt.Fprintf(stdout, "config version %d for %s published on %s, signed by %s\n", *ver, *gw, telemetry.ConfigTopic(*gw),
		telemetry.FormatPublicKey(priv.Public().(ed25519.PublicKey)))
	return ExitOK
}

// callAPI sends body to the cloud's API with the operator's token (from
// tokenFile, or $FIELDWATCH_TOKEN), bounded by a minute, and returns the
// body of its 200 answer, or says on stderr why what (e.g. "the config")
// was refused and returns the exit code.
func callAPI(ctx context.Context, method, api, path, tokenFile string, body []byte, what string, stderr io.Writer) ([]byte, int) {
	return callAPIWithin(ctx, time.Minute, method, api, path, tokenFile, body, what, stderr)
}

// callAPIWithin is callAPI bounded by limit.
func callAPIWithin(ctx context.Context, limit time.Duration, method, api, path, tokenFile string, body []byte, what string,
	stderr io.Writer) ([]byte, int) {
	token := os.Getenv("FIELDWATCH_TOKEN")
	if tokenFile != "" {
		b, _, err := secretfile.Read(tokenFile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return nil, ExitFail
		}
		token = strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(api, "/")+path, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, ExitUsage
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, ExitFail
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			out = []byte(e.Error)
		}
		fmt.Fprintf(stderr, "the cloud refused %s (%s): %s\n", what, resp.Status, bytes.TrimSpace(out))
		return nil, ExitFail
	}
	return out, ExitOK
}

// CommandExpiry is how long a command signed by fleet command is valid.
const CommandExpiry = 2 * time.Minute

// fleetCommand signs a remote command for a gateway, sends it through the
// running cloud's API (POST /api/v1/stations/{id}/commands), which
// publishes it and waits for the gateway's reply, and prints the reply as
// JSON. The exit status is 0 only when the gateway did it.
func fleetCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	set := flag.NewFlagSet("fieldwatch-cloud fleet command", flag.ContinueOnError)
	set.SetOutput(stderr)
	gw := set.String("gateway", "", "the gateway id")
	keyPath := set.String("key", "", "the signing key (fieldwatch-cloud fleet keygen)")
	api := set.String("api", "http://127.0.0.1:8080", "the cloud's HTTP address")
	tokenFile := set.String("token-file", "", "a file holding an operator API token (or $FIELDWATCH_TOKEN)")
	if code, ok := parseFlags(set, args); !ok {
		return code
	}
	usage := func() int {
		fmt.Fprintln(stderr, "usage: fieldwatch-cloud fleet command -gateway ID -key FILE [-api URL] [-token-file FILE] restart|resend FROM TO|read DEVICE")
		return ExitUsage
	}
	a := set.Args()
	if *gw == "" || *keyPath == "" || len(a) == 0 {
		return usage()
	}
	var idb [8]byte
	rand.Read(idb[:])
	now := time.Now()
	c := telemetry.Command{ID: fmt.Sprintf("%s-%x", now.UTC().Format("20060102T150405"), idb), Gateway: *gw, Kind: a[0],
		Issued: now, Expires: now.Add(CommandExpiry)}
	switch {
	case a[0] == telemetry.CommandRestart && len(a) == 1:
	case a[0] == telemetry.CommandRead && len(a) == 2:
		c.Device = a[1]
	case a[0] == telemetry.CommandResend && len(a) == 3:
		var err1, err2 error
		c.FromSeq, err1 = strconv.ParseUint(a[1], 10, 64)
		c.ToSeq, err2 = strconv.ParseUint(a[2], 10, 64)
		if err1 != nil || err2 != nil {
			return usage()
		}
	default:
		return usage()
	}
	priv, err := readSigningKey(*keyPath, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	body, err := telemetry.EncodeCommand(telemetry.SignCommand(c, priv))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	out, code := callAPI(ctx, http.MethodPost, *api, "/api/v1/stations/"+url.PathEscape(*gw)+"/commands", *tokenFile, body,
		"the command", stderr)
	if code != ExitOK {
		return code
	}
	var rec struct {
		Reply telemetry.CommandReply `json:"reply"`
	}
	if err := json.Unmarshal(out, &rec); err != nil {
		fmt.Fprintf(stderr, "the cloud's answer is not a command record: %v\n", err)
		return ExitFail
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, out, "", "  ")
	fmt.Fprintln(stdout, pretty.String())
	if rec.Reply.Result != telemetry.ReplyOK {
		fmt.Fprintf(stderr, "the gateway answered %s: %s %s\n", rec.Reply.Result, rec.Reply.Reason, rec.Reply.Error)
		return ExitFail
	}
	return ExitOK
}
