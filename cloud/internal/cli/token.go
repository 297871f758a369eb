package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/internal/atomicfile"
)

const tokenFileHeader = `# Fieldwatch API tokens (http.tokens_file). Only each secret's SHA-256 is
# kept here; ` + "`fieldwatch-cloud token -name NAME -role ROLE -file THIS_FILE`" + ` adds one.
# Roles: viewer (read), operator (also acknowledge alerts and silence them).
tokens:
`

// token makes an API token: it prints the secret once, and adds its hash
// to a token file or prints the line to add.
func token(args []string, stdout, stderr io.Writer) int {
	set := flag.NewFlagSet("fieldwatch-cloud token", flag.ContinueOnError)
	set.SetOutput(stderr)
	name := set.String("name", "", "who the token is for (a person or a system such as grafana)")
	role := set.String("role", "", "viewer (read) or operator (also acknowledge and silence)")
	file := set.String("file", "", "token file to add it to (created if missing); empty: print the line to add")
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if set.NArg() > 0 || *name == "" || *role == "" {
		fmt.Fprintln(stderr, "usage: fieldwatch-cloud token -name NAME -role viewer|operator [-file TOKENS_FILE]")
		return ExitUsage
	}
	r, err := apitoken.ParseRole(*role)
	if err != nil || r == apitoken.None {
		fmt.Fprintf(stderr, "-role: %q is not viewer or operator\n", *role)
		return ExitUsage
	}
	secret, hash := apitoken.New()
	line := fmt.Sprintf("  - {name: %s, role: %s, sha256: %s}\n", *name, r, hash)
	if *file == "" {
		// Check the name as the file will.
		if _, err := apitoken.Parse("-name", []byte("tokens:\n"+line)); err != nil {
			fmt.Fprintln(stderr, err)
			return ExitUsage
		}
		fmt.Fprintf(stdout, "token for %s (%s): %s\nIt is shown only now. Add this line under tokens: in the file http.tokens_file names:\n%s",
			*name, r, secret, line)
		return ExitOK
	}
	if err := appendToken(*file, *name, line); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitConfig
	}
	fmt.Fprintf(stdout, "token for %s (%s): %s\nIt is shown only now; %s keeps only its SHA-256. Reload fieldwatch-cloud (SIGHUP) to use it.\n",
		*name, r, secret, *file)
	return ExitOK
}

// appendToken adds line, the token called name, to the token file at path,
// creating it. A name already taken is refused; the file is replaced only
// if the result is a valid token file with one token more, so a file in a
// form a line cannot be appended to is left as it was.
func appendToken(path, name, line string) error {
	old, err := os.ReadFile(path)
	mode := fs.FileMode(0o600)
	before := 0
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = []byte(tokenFileHeader)
	case err != nil:
		return err
	default:
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		mode = st.Mode().Perm()
		set, err := apitoken.Parse(path, old)
		if err != nil {
			return fmt.Errorf("%s is not a valid token file, so nothing was added:\n%w", path, err)
		}
		if set.HasName(name) {
			return fmt.Errorf("%s already has a token named %s; choose another name, or remove that line first", path, name)
		}
		before = set.Len()
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	next := append(old, line...)
	if set, err := apitoken.Parse(path, next); err != nil || set.Len() != before+1 {
		why := "its tokens list does not end the file"
		if err != nil {
			why = err.Error()
		}
		return fmt.Errorf("cannot add the token to %s (%s); nothing was changed. Add this line under tokens: by hand:\n%s",
			path, why, line)
	}
	return atomicfile.Write(path, next, mode)
}
