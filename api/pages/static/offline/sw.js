// The offline verifier's service worker, served as /verify-sw.js (api/pages/offline.py fills in
// the version and the asset list) so that its scope, "/", covers /verify and /V/<code>.
//
// Once /verify has been opened online it keeps the page, its CSS and scripts and the signed
// trust list and status list in one cache, refreshed on every online visit (network first,
// cache fallback), and answers from that cache when the network is gone:
//   GET /verify, its assets, /pki/trust-list, /pki/status-list  network first, then the cache;
//   a navigation to /V/<code>                                   the network, else the cached
//                                                               /verify, which checks the code;
//   a POST of the /verify form                                  the network, else a redirect to
//                                                               /verify#qr=<text> (checked there).
// Every other request is left to the browser untouched: holders' pages and the APIs never
// pass through this cache.

const VERSION = '__VERSION__'
const ASSETS = __ASSETS__
const LISTS = ['/pki/trust-list', '/pki/status-list']
const PAGE = '/verify'
const PREFIX = 'elicence-offline-'
const CACHE = PREFIX + VERSION
const TIMEOUT_MS = 10000 // a hanging network (a captive portal) falls back to the cache too
const CODE_PATH = /^\/v\/[A-Za-z0-9]+\/?$/i

async function keep (cache, path) {
  const response = await fetch(path, { cache: 'no-store' })
  if (response.ok) await cache.put(path, response)
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE)
    await cache.addAll(ASSETS)
    // The lists are best effort here: the page refreshes them on every online visit.
    await Promise.allSettled(LISTS.map((path) => keep(cache, path)))
    await self.skipWaiting()
  })())
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name)
    }
    await self.clients.claim()
  })())
})

function withTimeout (promise) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('network timeout')), TIMEOUT_MS)
    promise.then(resolve, reject).finally(() => clearTimeout(timer))
  })
}

async function networkFirst (request, path) {
  const cache = await caches.open(CACHE)
  try {
    const response = await withTimeout(fetch(request))
    if (response.ok) {
      await cache.put(path, response.clone())
      return response
    }
    return (await cache.match(path)) || response
  } catch (error) {
    const cached = await cache.match(path)
    if (cached) return cached
    throw error
  }
}

async function codePage (request) {
  try {
    return await withTimeout(fetch(request))
  } catch (error) {
    const cached = await caches.match(PAGE, { cacheName: CACHE })
    if (cached) return cached
    throw error
  }
}

async function postedForm (request) {
  // No timeout: an upload on a slow link may take long, and only a failed one is offline.
  const copy = request.clone()
  try {
    return await fetch(request)
  } catch {
    let fragment = '#offline'
    try {
      const form = await copy.formData()
      const file = form.get('file')
      const qr = form.get('qr')
      if (file && file.name) fragment = '#offline-file'
      else if (typeof qr === 'string' && qr.trim()) fragment = '#qr=' + encodeURIComponent(qr.slice(0, 2048))
    } catch {} // an unreadable body: the page opens with its offline notice
    return Response.redirect(new URL(PAGE + fragment, self.location).href, 303)
  }
}

self.addEventListener('fetch', (event) => {
  const request = event.request
  const url = new URL(request.url)
  if (url.origin !== self.location.origin) return
  if (request.method === 'POST' && url.pathname === PAGE && request.mode === 'navigate') {
    event.respondWith(postedForm(request))
  } else if (request.method !== 'GET') {
    // left to the browser
  } else if (ASSETS.includes(url.pathname) || LISTS.includes(url.pathname)) {
    event.respondWith(networkFirst(request, url.pathname))
  } else if (request.mode === 'navigate' && CODE_PATH.test(url.pathname)) {
    event.respondWith(codePage(request))
  }
})
