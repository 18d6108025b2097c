// Package dotenv reads .env files, the one reader of the server (chunked-uploader) and the
// CLI (chunked-upload). The deploy scripts parse the same format in bash
// (scripts/dotenv.sh); a change here must be made there too.
//
// The format: KEY=VALUE lines; blank lines and lines starting with # are skipped; a line may
// start with "export "; a value in single quotes is literal, a value in double quotes
// unescapes \n, \" and \\; an unquoted value ends at " #" (a comment) and is trimmed. No
// variable is expanded and no line continues onto the next. A later line for the same KEY
// wins. Any other line is an error naming its number.
package dotenv

import (
	"fmt"
	"os"
	"strings"
)

// Parse parses the content of a .env file into its settings.
func Parse(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\"'") {
			return nil, fmt.Errorf("line %d: expected KEY=VALUE", i+1)
		}
		v = strings.TrimSpace(v)
		switch {
		case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
			v = v[1 : len(v)-1]
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			v = strings.NewReplacer(`\n`, "\n", `\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1])
		case strings.HasPrefix(v, "'") || strings.HasPrefix(v, `"`):
			return nil, fmt.Errorf("line %d: unterminated quote", i+1)
		default:
			if j := strings.Index(v, " #"); j >= 0 {
				v = strings.TrimSpace(v[:j])
			}
		}
		out[k] = v
	}
	return out, nil
}

// ReadFile reads and parses the .env file at path. A missing file is an error that
// errors.Is(err, fs.ErrNotExist) matches; errors name the path.
func ReadFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError: names the path
	}
	vars, err := Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vars, nil
}
