// /verify in the browser: installs the offline verifier's service worker, keeps the cached trust
// list and status list fresh while online, and when the network is gone checks the scanned QR
// text here (verifier.js) instead of posting it. Online, the form posts as it always did and the
// server stays the verifier.
//
// Everything written into the page goes through textContent: the only text shown is fixed here
// or in verifier.js, or the signed payload's identifier and dates once its signature held.

import { beijingTime, Indication, readiness, verifyOffline } from './verifier.js'

const TRUST_LIST = '/pki/trust-list'
const STATUS_LIST = '/pki/status-list'
const CODE_PATH = /^\/v\/[A-Za-z0-9]+\/?$/i
// The trust list changes rarely (its QR keys even more) and costs the server a transaction, so
// an online visit refetches it only when the cached copy is this old; the status list is
// revalidated on every visit (its ETag makes an unchanged list a 304).
const TRUST_LIST_REFRESH_MS = 10 * 60 * 1000
const STYLE = {
  [Indication.PASSED]: ['ok', '有效', 'Valid'],
  [Indication.FAILED]: ['bad', '无效', 'Not valid'],
  [Indication.INDETERMINATE]: ['warn', '无法确认', 'Cannot be confirmed']
}
const KINDS = { 1: '证照 / licence', 2: '出示码 / presentation code', 3: '加注件 / stamped copy' }
const SERVER_PARTS = ['error', 'status', 'purpose', 'presentation', 'domain', 'licence', 'seal', 'checks']
const NOTICES = {
  file: '离线时无法核验PDF文件，请扫描证照上的二维码 / a PDF cannot be verified offline; scan the licence\'s QR code',
  empty: '请扫描或粘贴二维码内容 / scan or paste a QR code',
  broken: '本机核验出错，请联网核验 / this device could not check the code; verify online',
  unsupported: '此浏览器不支持离线核验 / this browser cannot verify offline',
  offline: '当前离线：二维码在本机核验 / offline: QR codes are checked on this device',
  source: '离线结果只来自二维码的签名内容和本机缓存的信任列表、状态列表 / an offline answer comes only from the QR code\'s signed content and the trust list and status list cached on this device'
}

const $ = (id) => document.getElementById(id)

/** A cached list's text: through the service worker (network first, cache fallback), else
 * straight from the cache (a page the worker does not control yet); null when there is none. */
async function listText (path, mode = 'no-store') {
  try {
    const response = await fetch(path, { cache: mode })
    if (response.ok) return await response.text()
  } catch {} // offline and not controlled: read the cache below
  return cachedText(path)
}

/** How old the cached copy is, by the server's Date header; Infinity when there is none. */
async function age (path) {
  try {
    const response = await caches.match(path)
    const date = response ? Date.parse(response.headers.get('date') || '') : NaN
    return Number.isNaN(date) ? Infinity : Date.now() - date
  } catch {
    return Infinity
  }
}

async function cachedText (path) {
  try {
    const response = await caches.match(path)
    return response ? await response.text() : null
  } catch {
    return null
  }
}

// "中文 / English": the English half in a span marked lang="en", so a screen reader on this
// zh-CN page reads it with an English voice (WCAG 3.1.2). Still text nodes only.
function bilingual (element, text) {
  const at = text.lastIndexOf(' / ')
  if (at < 0) {
    element.textContent = text
    return
  }
  const english = document.createElement('span')
  english.lang = 'en'
  english.textContent = text.slice(at + 3)
  element.replaceChildren(text.slice(0, at + 3), english)
}

function row (list, term, value, mono = false) {
  const dt = document.createElement('dt')
  const dd = document.createElement('dd')
  dt.textContent = term
  dd.textContent = value
  if (mono) dd.className = 'mono'
  list.append(dt, dd)
}

function showVerdict (indication, sub, message, when) {
  for (const id of SERVER_PARTS) if ($(id)) $(id).hidden = true // an earlier online answer
  const [style, zh, en] = STYLE[indication]
  const box = $('offline-status')
  box.className = `status ${style}`
  box.dataset.indication = indication
  box.dataset.subIndication = sub || ''
  $('offline-verdict').textContent = zh
  $('offline-verdict-en').textContent = en
  bilingual($('offline-reason'), message)
  bilingual($('offline-when'), when)
  $('offline-claims').hidden = true
  $('offline-result').hidden = false
  bilingual($('footer'), NOTICES.source)
  document.title = `${zh} / ${en} — 电子证照离线核验 / Offline licence verification`
}

function show (result, now) {
  const when = result.asOf
    ? `离线核验，状态截至 ${beijingTime(result.asOf)}（北京时间） / offline, as of ${beijingTime(result.asOf)} Beijing time`
    : `离线核验，${beijingTime(now)}（北京时间） / offline verification, ${beijingTime(now)} Beijing time`
  showVerdict(result.indication, result.sub, result.message, when)
  const claims = result.claims
  if (claims === null) return
  const list = $('offline-claim-list')
  list.replaceChildren()
  row(list, '类别 / Kind', KINDS[claims.type])
  row(list, '证照标识 / Identifier', claims.identifier, true)
  if (claims.copyId) row(list, '加注件编号 / Copy', claims.copyId, true)
  row(list, '有效期至 / Valid until', claims.validUntil || '长期 / indefinite')
  if (claims.expiresAt) row(list, '出示码有效至 / Code expires at', beijingTime(claims.expiresAt))
  $('offline-claims').hidden = false
}

function notice (key) {
  showVerdict(Indication.INDETERMINATE, '', NOTICES[key], NOTICES.offline)
}

async function check (text) {
  if (!text.trim()) return notice('empty')
  const now = new Date()
  try {
    const [trustText, statusText] = await Promise.all([listText(TRUST_LIST), listText(STATUS_LIST)])
    show(await verifyOffline(text, { trustText, statusText, now }), now)
  } catch {
    notice('broken')
  }
  const input = $('qr')
  input.value = '' // ready for the next scan
  input.focus()
}

function onSubmit (event) {
  if (navigator.onLine !== false) return // online: the server verifies
  event.preventDefault()
  if ($('file').files.length) return notice('file')
  check($('qr').value)
}

/** Resolves once the service worker controls this page (a first visit waits for its claim). */
function controlled () {
  if (navigator.serviceWorker.controller) return Promise.resolve()
  return new Promise((resolve) => {
    navigator.serviceWorker.addEventListener('controllerchange', () => resolve(), { once: true })
    setTimeout(resolve, 5000)
  })
}

async function describe () {
  const line = $('offline-ready')
  const state = await readiness({
    trustText: await cachedText(TRUST_LIST), statusText: await cachedText(STATUS_LIST)
  })
  line.dataset.ready = String(state.ready)
  line.dataset.asOf = state.asOf ? state.asOf.toISOString() : ''
  line.className = state.ready ? 'offline-ready ready' : 'offline-ready not-ready'
  const prefix = navigator.onLine === false ? `${NOTICES.offline}。` : ''
  bilingual(line, state.ready
    ? `${prefix}离线核验已就绪，状态截至 ${beijingTime(state.asOf)}（北京时间） / ready to verify offline, status as of ${beijingTime(state.asOf)} Beijing time`
    : `${prefix}离线核验未就绪：${state.message}`)
}

async function prepare () {
  if (!('serviceWorker' in navigator) || !('caches' in window)) {
    bilingual($('offline-ready'), NOTICES.unsupported)
    return
  }
  try {
    if ($('status') && !(await navigator.serviceWorker.getRegistration())) {
      // A result page on a device that never opened /verify (a citizen's phone that scanned
      // a code): nothing is installed there, and it downloads nothing more.
      $('offline-ready').dataset.ready = 'not-installed'
      return
    }
    await navigator.serviceWorker.register('/verify-sw.js', { scope: '/' })
    await navigator.serviceWorker.ready
    await controlled()
    if (navigator.onLine !== false) {
      // Through the worker, network first: the cache now holds the lists as they are.
      const trust = (await age(TRUST_LIST)) > TRUST_LIST_REFRESH_MS ? listText(TRUST_LIST) : null
      await Promise.all([trust, listText(STATUS_LIST, 'no-cache')])
    }
  } catch {} // no worker (a private window may refuse it): describe what the cache holds
  await describe()
}

function fragmentText (encoded) {
  try {
    return decodeURIComponent(encoded)
  } catch {
    return '' // not what the worker wrote: treated as an empty scan
  }
}

async function start () {
  $('verify-form').querySelector('form').addEventListener('submit', onSubmit)
  window.addEventListener('online', describe)
  window.addEventListener('offline', describe)
  const hash = location.hash
  if (hash.startsWith('#qr=') || hash.startsWith('#offline')) {
    history.replaceState(null, '', location.pathname) // a reload does not check it again
    if (hash === '#offline-file') notice('file')
    else if (hash.startsWith('#qr=')) await check(fragmentText(hash.slice(4)))
  } else if (!$('status') && CODE_PATH.test(location.pathname)) {
    // /V/<code> answered by the worker with the cached page: the network is gone.
    await check(location.href)
  }
  await prepare()
}

start()
