package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// memoPlugin is the backend of the "parts alone" host: the plugin of sdk/README.md, which
// implements only Put (no part-wise storage), so that its host stages the parts and does
// nothing else until complete, which the benchmark never calls on it.
const memoPlugin = "chunked-uploader-plugin-memo"

// buildMemo builds the plugin of sdk/README.md (the code between <!-- opstest:main.go -->
// and <!-- /opstest:main.go -->, as cmd/opstest does) into outDir, in a module of its own in
// work that requires this repository's sdk through replace directives.
func buildMemo(root, work, outDir string) error {
	b, err := os.ReadFile(filepath.Join(root, "sdk", "README.md"))
	if err != nil {
		return err
	}
	m := regexp.MustCompile("(?s)<!-- opstest:main.go -->\\s*```go\\n(.*?)\\n```\\s*<!-- /opstest:main.go -->").FindSubmatch(b)
	if m == nil {
		return fmt.Errorf("sdk/README.md: no ```go block between <!-- opstest:main.go --> and <!-- /opstest:main.go -->")
	}
	mod := filepath.Join(work, "memo-plugin")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		return err
	}
	gomod := fmt.Sprintf("module example.com/memo-plugin\n\ngo 1.26\n\nrequire github.com/chunked-uploader/chunked-uploader/sdk v0.0.0\n\n"+
		"replace (\n\tgithub.com/chunked-uploader/chunked-uploader/sdk => %s\n\tgithub.com/chunked-uploader/chunked-uploader/proto => %s\n)\n",
		filepath.Join(root, "sdk"), filepath.Join(root, "proto"))
	// go.sum starts from the sdk's and proto's, so that the module cache is enough.
	var sums []string
	for _, dir := range []string{"sdk", "proto"} {
		s, err := os.ReadFile(filepath.Join(root, dir, "go.sum"))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		sums = append(sums, strings.Split(strings.TrimSpace(string(s)), "\n")...)
	}
	slices.Sort(sums)
	sums = slices.Compact(slices.DeleteFunc(sums, func(s string) bool { return s == "" }))
	files := map[string]string{"go.mod": gomod, "go.sum": strings.Join(sums, "\n") + "\n", "main.go": string(m[1]) + "\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(outDir, memoPlugin), ".")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the plugin of sdk/README.md: %v\n%s", err, out)
	}
	return nil
}
