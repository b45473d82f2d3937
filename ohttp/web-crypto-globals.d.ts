// Browsers declare WebCrypto's key types globally, and @hpke/core's declarations name them so;
// @types/node declares them only inside node:crypto. These give the global names Node's shapes
// (types only: nothing here is emitted or runs). Declared as empty extensions so that they merge
// with the DOM's own declarations wherever a browser build includes them.
/* eslint-disable @typescript-eslint/consistent-type-imports, @typescript-eslint/no-empty-object-type --
   a global script cannot import, and an empty extension is what lets it merge with the DOM's */
type NodeWebCryptoKey = import('node:crypto').webcrypto.CryptoKey;
type NodeWebCryptoJsonWebKey = import('node:crypto').webcrypto.JsonWebKey;
interface CryptoKey extends NodeWebCryptoKey {}
interface CryptoKeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}
interface JsonWebKey extends NodeWebCryptoJsonWebKey {}
