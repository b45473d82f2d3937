// Where a run is: on a terminal one line, rewritten every second (scenario, step, time left);
// otherwise one plain line per step, for logs and CI.
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Progress {
  /** The scenario starting, with its step count and its estimated duration. */
  scenario(name: string, steps: number, estimatedSeconds: number): void;
  /** A step starting; `seconds` is how long it is planned to take. */
  step(label: string, seconds?: number): void;
  /** A line that stays (a result, a warning). */
  note(text: string): void;
  done(): void;
}

export function formatDuration(seconds: number): string {
  if (seconds < 10 && !Number.isInteger(seconds)) return `${Math.max(0, seconds).toFixed(1)}s`;
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 60) return `${whole}s`;
  return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
}

/** `estimates`: each scenario's estimated seconds, in the order they will run. */
export function createProgress(stream: ProgressStream, estimates: Record<string, number>): Progress {
  const tty = stream.isTTY === true;
  const remainingScenarios = new Map(Object.entries(estimates));
  let current: { name: string; steps: number; estimate: number; index: number; startedAt: number } | undefined;
  let label = '';
  let line = '';
  let timer: NodeJS.Timeout | undefined;

  const timeLeft = () => {
    let seconds = [...remainingScenarios.values()].reduce((total, value) => total + value, 0);
    if (current) seconds += Math.max(0, current.estimate - (performance.now() - current.startedAt) / 1000);
    return seconds;
  };
  const render = () => {
    if (!current) return;
    line = `[${current.name} ${current.index}/${current.steps}] ${label} · ~${formatDuration(timeLeft())} left`;
    if (tty) stream.write(`\r\x1b[K${line}`);
  };
  const clearLine = () => {
    if (tty && line !== '') stream.write('\r\x1b[K');
  };
  return {
    scenario(name, steps, estimatedSeconds) {
      remainingScenarios.delete(name);
      current = { name, steps, estimate: estimatedSeconds, index: 0, startedAt: performance.now() };
      if (tty && !timer) {
        timer = setInterval(render, 1000);
        timer.unref();
      }
    },
    step(text, seconds) {
      if (!current) return;
      current.index = Math.min(current.steps, current.index + 1);
      label = seconds === undefined ? text : `${text} (${formatDuration(seconds)})`;
      render();
      if (!tty) stream.write(line + '\n');
    },
    note(text) {
      clearLine();
      stream.write(text + '\n');
      render();
    },
    done() {
      if (timer) clearInterval(timer);
      timer = undefined;
      clearLine();
      line = '';
      current = undefined;
    },
  };
}
