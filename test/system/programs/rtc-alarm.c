// Arms the RTC alarm through Linux's RTC character device (Documentation/ABI/testing/rtc-dev,
// include/uapi/linux/rtc.h) a few seconds ahead and blocks in read() until the alarm interrupt
// arrives, then reports what the driver delivered and how long it took. Run in the guest by
// test/system/rtc.test.ts: the wait ends only if the device's alarm really raised its IRQ.
#include <fcntl.h>
#include <linux/rtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  int ahead = argc > 1 ? atoi(argv[1]) : 2;
  int fd = open("/dev/rtc0", O_RDONLY);
  if (fd < 0) { perror("rtc-alarm: /dev/rtc0"); return 1; }
  struct rtc_time tm;
  if (ioctl(fd, RTC_RD_TIME, &tm) < 0) { perror("rtc-alarm: RTC_RD_TIME"); return 1; }
  // The RTC counts UTC; timegm/gmtime convert without the guest's time zone.
  struct tm t = { .tm_sec = tm.tm_sec, .tm_min = tm.tm_min, .tm_hour = tm.tm_hour,
                  .tm_mday = tm.tm_mday, .tm_mon = tm.tm_mon, .tm_year = tm.tm_year };
  time_t at = timegm(&t) + ahead;
  struct tm *a = gmtime(&at);
  struct rtc_wkalrm alarm = { .enabled = 1 };
  alarm.time.tm_sec = a->tm_sec; alarm.time.tm_min = a->tm_min; alarm.time.tm_hour = a->tm_hour;
  alarm.time.tm_mday = a->tm_mday; alarm.time.tm_mon = a->tm_mon; alarm.time.tm_year = a->tm_year;
  double t0 = mono();
  if (ioctl(fd, RTC_WKALM_SET, &alarm) < 0) { perror("rtc-alarm: RTC_WKALM_SET"); return 1; }
  // Give up well after the alarm is due, so a lost interrupt fails the test instead of hanging it.
  fd_set fds;
  FD_ZERO(&fds);
  FD_SET(fd, &fds);
  struct timeval limit = { .tv_sec = ahead + 5 };
  if (select(fd + 1, &fds, NULL, NULL, &limit) != 1) {
    printf("rtc-alarm: no alarm interrupt within %d s\n", ahead + 5);
    return 1;
  }
  unsigned long data;
  if (read(fd, &data, sizeof data) != sizeof data) { perror("rtc-alarm: read"); return 1; }
  double waited = mono() - t0;
  // The low byte holds the event flags (RTC_AF for an alarm), the rest the count of events.
  printf("rtc-alarm: alarm at %lld, flags 0x%02lx, events %lu, waited %.2f s\n",
         (long long)at, data & 0xff, data >> 8, waited);
  close(fd);
  return 0;
}
