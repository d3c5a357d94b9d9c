// Loads the package and prints the engine it chose, or the code of the error it threw: a script of
// its own, because the scenarios' modules import the package as they load.
try {
  const { Doorbell, engine } = await import('shm-doorbell')
  const [doorbell, handle] = Doorbell.createPair()
  doorbell.close()
  handle.close()
  console.log(`engine ${engine}`)
} catch (err) {
  console.log(`error ${err.code}`)
}
