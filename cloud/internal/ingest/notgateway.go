package ingest

import (
	"fmt"
	"slices"
)

// fromNonGateway refuses a message on the topics of a user who is not a
// gateway (Options.NotGateways: the cloud's own user, alert readers): a
// broker whose ACL lets every user publish under fieldwatch/v1/<its name>/
// would otherwise make that user a station. Counted (reason not_gateway)
// and logged, throttled; never acknowledged, never in the registry.
func (in *Ingestor) fromNonGateway(topic, gw string) bool {
	if !slices.Contains(in.o.NotGateways, gw) {
		return false
	}
	in.reject("not_gateway", topic, gw, fmt.Errorf("%q is not a gateway but a user of the cloud or an alert reader", gw))
	return true
}
