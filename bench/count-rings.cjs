// A preload that counts the doorbell rings this process makes (`Doorbell#signalNow`, which every
// ring of a Channel's peer goes through) and prints the count to stderr at exit. Needs the built package:
//
//   node -r ./bench/count-rings.cjs bench/throughput.mjs channel-values 0 1000
const { Doorbell } = require('../lib/doorbell.js')

const signalNow = Doorbell.prototype.signalNow
let rings = 0
Doorbell.prototype.signalNow = function countedSignalNow() {
  rings++
  return signalNow.call(this)
}
process.on('exit', () => process.stderr.write(`doorbell rings made by this process: ${rings}\n`))
