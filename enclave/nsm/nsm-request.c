/*
 * nsm-request: one request to the Nitro Secure Module, the only thing in the enclave that is not
 * TypeScript. It reads a CBOR-encoded NSM request on stdin (at most 4 KiB), passes it to the NSM
 * driver with its single ioctl, and writes the CBOR-encoded response on stdout. All CBOR encoding
 * and decoding happens in TypeScript (enclave/nitro-nsm.ts); this program never looks inside.
 *
 * The interface is the kernel's (include/uapi/linux/nsm.h, Linux 6.8+, and the nsm driver that
 * earlier enclave kernels ship):
 *   struct nsm_iovec { __u64 addr; __u64 len; };
 *   struct nsm_raw   { struct nsm_iovec request; struct nsm_iovec response; };
 *   NSM_IOCTL_RAW = _IOWR(0x0A, 0x0, struct nsm_raw)
 * On return the driver sets response.len to the length of the response.
 *
 * Exit codes: 0 response written; 1 the device or the ioctl failed (errno on stderr); 2 bad input.
 * Built in the enclave image's build stage: cc -O2 -Wall -Wextra -o nsm-request nsm-request.c
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define NSM_DEVICE "/dev/nsm"
#define NSM_MAGIC 0x0A
#define NSM_REQUEST_MAX_SIZE 0x1000
#define NSM_RESPONSE_MAX_SIZE 0x3000

struct nsm_iovec {
  uint64_t addr;
  uint64_t len;
};

struct nsm_raw {
  struct nsm_iovec request;
  struct nsm_iovec response;
};

#define NSM_IOCTL_RAW _IOWR(NSM_MAGIC, 0x0, struct nsm_raw)

static int write_all(int fd, const uint8_t *buffer, size_t length) {
  while (length > 0) {
    ssize_t written = write(fd, buffer, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buffer += written;
    length -= (size_t)written;
  }
  return 0;
}

int main(void) {
  static uint8_t request[NSM_REQUEST_MAX_SIZE + 1];
  static uint8_t response[NSM_RESPONSE_MAX_SIZE];
  size_t request_length = 0;

  for (;;) {
    ssize_t got = read(STDIN_FILENO, request + request_length, sizeof(request) - request_length);
    if (got < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "nsm-request: reading the request: %s\n", strerror(errno));
      return 2;
    }
    if (got == 0) break;
    request_length += (size_t)got;
    if (request_length > NSM_REQUEST_MAX_SIZE) {
      fprintf(stderr, "nsm-request: the request is larger than the NSM accepts (%d bytes)\n", NSM_REQUEST_MAX_SIZE);
      return 2;
    }
  }
  if (request_length == 0) {
    fprintf(stderr, "nsm-request: empty request on stdin\n");
    return 2;
  }

  int device = open(NSM_DEVICE, O_RDWR | O_CLOEXEC);
  if (device < 0) {
    fprintf(stderr, "nsm-request: cannot open %s: %s (is this a Nitro Enclave?)\n", NSM_DEVICE, strerror(errno));
    return 1;
  }
  struct nsm_raw message;
  memset(&message, 0, sizeof(message));
  message.request.addr = (uint64_t)(uintptr_t)request;
  message.request.len = request_length;
  message.response.addr = (uint64_t)(uintptr_t)response;
  message.response.len = sizeof(response);
  int status;
  do {
    status = ioctl(device, NSM_IOCTL_RAW, &message);
  } while (status < 0 && errno == EINTR);
  int saved = errno;
  close(device);
  if (status < 0) {
    fprintf(stderr, "nsm-request: the NSM ioctl failed: %s\n", strerror(saved));
    return 1;
  }
  if (message.response.len > sizeof(response)) {
    fprintf(stderr, "nsm-request: the NSM reported a %llu-byte response, more than its maximum\n", (unsigned long long)message.response.len);
    return 1;
  }
  if (write_all(STDOUT_FILENO, response, (size_t)message.response.len) != 0) {
    fprintf(stderr, "nsm-request: writing the response: %s\n", strerror(errno));
    return 1;
  }
  return 0;
}
