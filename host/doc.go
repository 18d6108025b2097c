// Package host holds the domain types of the chunked-uploader server: uploads, parts, their
// states, and the Error type whose stable codes clients branch on.
//
// Subpackages implement the pieces: config (settings), auth (API key and part tokens),
// sqlite (upload records), staging (part files on local disk), pluginmgr (the storage
// plugin process), upload (the service tying them together) and api (the HTTP layer, the
// one place that maps error codes to HTTP statuses).
package host
