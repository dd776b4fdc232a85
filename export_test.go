package proxy

// LeavesBucket exposes leavesBucket to the black-box tests: the integration
// suite expects the proxy's 400 refusal exactly for the keys it reports.
var LeavesBucket = leavesBucket
