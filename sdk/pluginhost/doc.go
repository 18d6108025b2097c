// Package pluginhost is the host side of the storage plugin protocol: the go-plugin glue a
// host puts in its plugin.ClientConfig (PluginSet) and the Remote it dispenses, which
// speaks to a plugin served by sdk.Serve. Plugin authors do not need it, except in tests
// that talk to their Storage over a real gRPC connection (package sdk/storagetest does so).
//
// Every error a Remote returns wraps the sdk sentinels the plugin's error wrapped: the
// plugin sends them as google.rpc.ErrorInfo details of the gRPC status, and
// sdk.FromStatus turns them back.
package pluginhost
