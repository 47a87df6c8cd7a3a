// The self-service terminal (/verify?kiosk=1): the scanner field keeps the focus, so a USB scanner
// always types into it; a result clears itself after data-reset-seconds (set by the server, no
// inline script: the CSP forbids it); the print button prints the result with its QR code.
(function () {
  'use strict'
  const body = document.body
  const input = document.getElementById('qr')
  const seconds = Number(body.dataset.resetSeconds)
  const resetUrl = body.dataset.resetUrl || '/verify?kiosk=1'
  const hasResult = document.getElementById('status') || document.getElementById('error')
  let timer = null

  function refocus () {
    if (input && document.activeElement !== input) input.focus({ preventScroll: true })
  }

  function armReset () {
    if (!hasResult || !(seconds > 0)) return
    if (timer) clearTimeout(timer)
    timer = setTimeout(function () { window.location.replace(resetUrl) }, seconds * 1000)
  }

  if (input) {
    input.addEventListener('blur', function () { setTimeout(refocus, 0) })
    input.addEventListener('input', armReset) // someone is scanning: do not clear under them
    refocus()
  }
  const print = document.getElementById('print')
  if (print) {
    print.addEventListener('click', function () {
      window.print()
      refocus()
    })
  }
  armReset()
})()
