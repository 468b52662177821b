package wirefleet

// Version is the release version, set at build time with
// -ldflags "-X github.com/wirefleet/wirefleet.Version=…".
var Version = "0.1.0-dev"
