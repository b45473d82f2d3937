// The media types of RFC 9458 §9.
export const MEDIA_TYPE_OHTTP_KEYS = 'application/ohttp-keys';
export const MEDIA_TYPE_OHTTP_REQUEST = 'message/ohttp-req';
export const MEDIA_TYPE_OHTTP_RESPONSE = 'message/ohttp-res';
