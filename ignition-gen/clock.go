package main

import "time"

// timeNow is the clock; a variable so a test can move it.
var timeNow = time.Now
