package pluginmgr

import (
	"context"
	"fmt"
)

// Validate starts the plugin of opt, asks it to check opt.Settings without using them
// (ConfigureRequest.validate_only: it parses them as it would to start, and connects to
// nothing), and stops it. This is what --check-config runs. A setting the plugin refuses
// gives an error wrapping sdk.ErrInvalidConfig that names it; a plugin that cannot start
// gives the same errors as Start. A plugin built without a validator accepts any settings.
func Validate(ctx context.Context, opt Options) error {
	m := New(opt)
	defer m.Close()
	p, err := m.launch()
	if err != nil {
		return fmt.Errorf("storage backend %q: %w", opt.Name, err)
	}
	defer p.stop(m.log)
	vctx, cancel := context.WithTimeout(ctx, m.opt.StartTimeout)
	defer cancel()
	if err := p.remote.Validate(vctx, opt.Settings); err != nil {
		return fmt.Errorf("storage backend %q: %w", opt.Name, err)
	}
	return nil
}
