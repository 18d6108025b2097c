package config

import (
	"fmt"
	"strings"
)

// ParseDotEnv parses a .env file: KEY=VALUE lines, optional "export " prefix, # comments,
// blank lines, values optionally in single quotes (literal) or double quotes (\n, \", \\
// escapes). Unquoted values end at " #". It does not expand variables.
func ParseDotEnv(s string) (map[string]string, error) {
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
