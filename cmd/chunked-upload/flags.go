package main

import (
	"errors"
	"flag"
	"io"
	"io/fs"
	"strings"

	"github.com/chunked-uploader/chunked-uploader/host/dotenv"
	"github.com/chunked-uploader/chunked-uploader/sdk/client"
)

const defaultServer = "http://localhost:3000"

// errHelp is -h or --help.
var errHelp = flag.ErrHelp

// globals are the flags every command takes.
type globals struct {
	server, apiKey string
	json, quiet    bool
	set            []string // the global flags given, as --name=value, to carry them over
	serverFlag     bool     // --server was given (the resume hint repeats it)
}

// newFlagSet returns a flag set with the global flags bound to g. It prints nothing: errors
// are returned and the help text is ours.
func newFlagSet(name string, g *globals) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&g.server, "server", "", "")
	fs.StringVar(&g.apiKey, "api-key", "", "")
	fs.BoolVar(&g.json, "json", false, "")
	fs.BoolVar(&g.quiet, "quiet", false, "")
	return fs
}

// args returns the global flags that were set on the top-level flag set, for the command's.
func (g *globals) args() []string {
	var out []string
	if g.server != "" {
		out = append(out, "--server="+g.server)
	}
	if g.apiKey != "" {
		out = append(out, "--api-key="+g.apiKey)
	}
	if g.json {
		out = append(out, "--json")
	}
	if g.quiet {
		out = append(out, "--quiet")
	}
	return out
}

// parse parses args with flags anywhere among the positional arguments ("upload FILE
// --path x" as well as "upload --path x FILE"); everything after "--" is positional. It
// checks that there are exactly want positional arguments, named by names for the message.
func parse(fs *flag.FlagSet, g *globals, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "server" {
			g.serverFlag = true
		}
	})
	if len(pos) != len(names) {
		return nil, usagef("%s needs %s, got %d argument(s)", fs.Name(), strings.Join(names, " "), len(pos))
	}
	return pos, nil
}

// newClient builds the API client from the global flags, the environment and .env. needKey
// makes a missing API key a usage error.
func (e *env) newClient(g *globals, needKey bool, opts ...client.Option) (*client.Client, error) {
	server := g.server
	if server == "" {
		server = e.getenv("CHUNKED_UPLOADER_URL")
	}
	if server == "" {
		server = defaultServer
	}
	key := g.apiKey
	if key == "" {
		key = e.getenv("API_KEY")
	}
	if key == "" && e.dotenv != "" {
		var err error
		if key, err = dotenvValue(e.dotenv, "API_KEY"); err != nil {
			return nil, usagef("reading the API key: %v (fix the file, or set API_KEY or pass --api-key)", err)
		}
	}
	if key == "" && needKey {
		return nil, usagef("no API key: set API_KEY, or pass --api-key")
	}
	c, err := client.New(server, key, opts...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return c, nil
}

// dotenvValue returns the value of name in the .env file at path, read as the server reads
// it (host/dotenv): "" when the file is missing or does not set name; an error naming the file
// and line when it does not parse.
func dotenvValue(path, name string) (string, error) {
	vars, err := dotenv.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return vars[name], nil
}
