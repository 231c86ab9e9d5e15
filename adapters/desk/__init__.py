"""The desk of a gateway: conversation flows, the routing link, the catalogue, watching."""
