package rollout

import (
	"slices"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
)

// RegistryFleet selects gateways from the cloud's registry: those whose
// newest state carries the labels.
type RegistryFleet struct{ Registry *registry.Registry }

var _ Fleet = RegistryFleet{}

// Select implements Fleet.
func (f RegistryFleet) Select(labels map[string]string) (ids, unknownKeys []string) {
	keys := map[string]bool{}
	for _, row := range f.Registry.Inventory(registry.InventoryFilter{}) {
		for k := range row.Labels {
			keys[k] = true
		}
	}
	for k := range labels {
		if !keys[k] {
			unknownKeys = append(unknownKeys, k)
		}
	}
	slices.Sort(unknownKeys)
	for _, row := range f.Registry.Inventory(registry.InventoryFilter{Labels: labels}) {
		ids = append(ids, row.ID)
	}
	return ids, unknownKeys
}
