package main

import (
	"bufio"
	"errors"
	"flag"
	"io"
	"os"
	"strings"

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
		key = dotenvValue(e.dotenv, "API_KEY")
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

// dotenvValue returns the value of name in the .env file at path ("" if the file or the
// line is missing): NAME=VALUE lines, optional "export ", optional single or double quotes.
func dotenvValue(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != name {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			return v[1 : len(v)-1]
		}
		if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		return v
	}
	return ""
}
