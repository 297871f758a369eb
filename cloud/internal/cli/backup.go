package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/fieldwatch/fieldwatch/cloud/internal/backup"
	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
)

// backupCmd copies what the cloud keeps into a new directory, beside a
// running cloud (docs/recovery.md).
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	path, dataDir, to, code := dirFlags(args, stderr, "backup", "to",
		"the backup directory to create (must not exist, or be empty)",
		"the cloud's config file (its data_dir, and copied with the files it names)")
	if to == nil {
		return code
	}
	cfg, err := config.LoadFile(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitConfig
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if cfg.Store.InfluxDB.URL != "" {
		fmt.Fprintln(stdout, "note: readings and commit records are in InfluxDB; back it up with its own tool at the same time (docs/recovery.md)")
	}
	_, err = backup.Backup(ctx, backup.Options{DataDir: cfg.DataDir, To: *to, Log: stdout,
		Config: []string{cfg.File, cfg.HTTP.TokensFile, cfg.MQTT.PasswordFile, cfg.Alerting.Rules, cfg.Store.InfluxDB.TokenFile}})
	if err != nil {
		fmt.Fprintf(stderr, "fieldwatch-cloud backup: %v\n", err)
		return ExitFail
	}
	return ExitOK
}

// restoreCmd puts a backup in place of the data directory; it refuses a
// running cloud's.
func restoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	path, dataDir, from, code := dirFlags(args, stderr, "restore", "from", "the backup directory (made by fieldwatch-cloud backup)",
		"the cloud's config file, for its data_dir (it may be missing: then give -data)")
	if from == nil {
		return code
	}
	dir := *dataDir
	if dir == "" {
		cfg, err := config.LoadFile(*path)
		if err != nil {
			fmt.Fprintf(stderr, "%v (give the data directory with -data)\n", err)
			return ExitConfig
		}
		dir = cfg.DataDir
	}
	if _, err := backup.Restore(ctx, backup.RestoreOptions{From: *from, DataDir: dir, Out: stdout}); err != nil {
		fmt.Fprintf(stderr, "fieldwatch-cloud restore: %v\n", err)
		if errors.Is(err, backup.ErrLocked) {
			fmt.Fprintln(stderr, "stop the cloud (systemctl stop fieldwatch-cloud), then restore")
		}
		return ExitFail
	}
	return ExitOK
}

// dirFlags parses the flags of backup and restore: -c, -data and the
// backup directory's flag dirFlag, which is required. A nil dir means
// return code.
func dirFlags(args []string, stderr io.Writer, cmd, dirFlag, dirHelp, configHelp string) (path, dataDir, dir *string, code int) {
	fs := flag.NewFlagSet("fieldwatch-cloud "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path = fs.String("c", os.Getenv("FIELDWATCH_CLOUD_CONFIG"), configHelp)
	dataDir = fs.String("data", "", "data directory (overrides data_dir)")
	dir = fs.String(dirFlag, "", dirHelp)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, nil, ExitOK
		}
		return nil, nil, nil, ExitUsage
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usage: fieldwatch-cloud %s -%s DIR [-c cloud.yaml] [-data DATA_DIR]\n", cmd, dirFlag)
		return nil, nil, nil, ExitUsage
	}
	return path, dataDir, dir, 0
}
