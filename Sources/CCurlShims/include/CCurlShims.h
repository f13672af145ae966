#ifndef BACKSTOP_CCURL_SHIMS_H
#define BACKSTOP_CCURL_SHIMS_H

// Swift cannot call C variadic functions, so curl_easy_setopt/getinfo get one typed,
// non-variadic wrapper per argument kind.
#include <curl/curl.h>

typedef size_t (*backstop_curl_data_callback)(char *buffer, size_t size, size_t count, void *context);

CURLcode backstop_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode backstop_curl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value);
CURLcode backstop_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode backstop_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode backstop_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode backstop_curl_setopt_data_callback(CURL *handle, CURLoption option, backstop_curl_data_callback value);

/// Options that take a `struct curl_blob` (PEM held in memory: kubeconfig's *-data fields);
/// libcurl copies the bytes.
CURLcode backstop_curl_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length);

/// curl_global_init(CURL_GLOBAL_DEFAULT): the flag is a macro expression Swift does not import.
CURLcode backstop_curl_global_init(void);

CURLcode backstop_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode backstop_curl_getinfo_offset(CURL *handle, CURLINFO info, curl_off_t *value);
CURLcode backstop_curl_getinfo_string(CURL *handle, CURLINFO info, const char **value);

#endif
