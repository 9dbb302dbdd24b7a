// Command compose-check loads docker-compose files with the Compose Specification's reference
// loader (github.com/compose-spec/compose-go/v2), the library behind `docker compose config`,
// without needing a Docker engine. It interpolates variables, validates against the
// specification's schema, normalises the model and checks its consistency (for example that
// every `depends_on` names a defined service), then prints the project as JSON on stdout.
// Any error is printed on stderr and the exit status is 1; a usage error exits with 2.
//
// Variables come from the process environment and from the files named with -env-file; a
// `.env` beside the compose file is NOT read implicitly, so that the result does not depend on
// a developer's secrets.
//
// Profiles are active only when named with -profile (like `docker compose --profile NAME`);
// COMPOSE_PROFILES is not read. The services of the other profiles are left out of the output,
// as Compose leaves them out of `up`.
//
// Usage: compose-check [-env-file FILE]... [-profile NAME]... [-workdir DIR] COMPOSE_FILE [OVERRIDE_FILE...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type fileList []string

func (f *fileList) String() string { return strings.Join(*f, ",") }

func (f *fileList) Set(value string) error {
	*f = append(*f, value)
	return nil
}

func main() {
	var envFiles, profiles fileList
	flags := flag.NewFlagSet("compose-check", flag.ContinueOnError)
	flags.Var(&envFiles, "env-file", "read variables from this file (repeatable; default: none)")
	flags.Var(&profiles, "profile", "activate this profile (repeatable; default: none)")
	workdir := flags.String("workdir", "", "project directory (default: the first file's directory)")
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(),
			"usage: compose-check [-env-file FILE]... [-profile NAME]... [-workdir DIR] COMPOSE_FILE [OVERRIDE_FILE...]")
		flags.PrintDefaults()
	}
	if err := flags.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if flags.NArg() == 0 {
		flags.Usage()
		os.Exit(2)
	}
	if err := run(flags.Args(), envFiles, profiles, *workdir); err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
		os.Exit(1)
	}
}

func run(files []string, envFiles []string, profiles []string, workdir string) error {
	if workdir == "" {
		workdir = filepath.Dir(files[0])
	}
	workdir, err := filepath.Abs(workdir)
	if err != nil {
		return err
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(workdir),
		cli.WithOsEnv,
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithProfiles(profiles),
	}
	if len(envFiles) > 0 {
		opts = append(opts, cli.WithEnvFiles(envFiles...), cli.WithDotEnv)
	}
	options, err := cli.NewProjectOptions(files, opts...)
	if err != nil {
		return fmt.Errorf("options: %w", err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encoding the project: %w", err)
	}
	_, err = fmt.Println(string(out))
	return err
}
