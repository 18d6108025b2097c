package reliability

import (
	"fmt"
	"os"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

func TestMain(m *testing.M) {
	// The fault plugin lives in the host module's testdata so that it never ships: it is
	// always built.
	code := harness.Run(m, harness.Config{Plugins: []string{"local"}, Extra: []harness.Build{harness.FaultPlugin}})
	fmt.Printf("reliability: %d plugin processes killed with SIGKILL while the host served; %d hosts killed with SIGKILL and restarted\n",
		pluginKills.Load(), hostKills.Load())
	os.Exit(code)
}
