package store

import (
	"encoding/json"
	"fmt"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// UnknownContext is the error a store returns for a compact context it
// does not hold.
func UnknownContext(gateway string, id, version uint32) error {
	return fmt.Errorf("%w: gateway %s context %08x version %d", telemetry.ErrUnknownContext, gateway, id, version)
}

// ParseContext reads a compact context a store kept as JSON, refusing one
// that does not parse or validate.
func ParseContext(gateway string, id, version uint32, body []byte) (*telemetry.CompactContext, error) {
	var c telemetry.CompactContext
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("stored context %s/%08x/%d is damaged: %w", gateway, id, version, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("stored context %s/%08x/%d is damaged: %w", gateway, id, version, err)
	}
	return &c, nil
}
