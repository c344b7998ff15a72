import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * A tiny line chart (uPlot: canvas, ~20 kB gzipped) of one series over the last hour. The label
 * beside it carries the number, so the chart is decoration for screen readers (aria-hidden).
 */
export function Sparkline(props: { values: number[]; bucketSeconds: number; until: string; color: string; label: string }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const end = Date.parse(props.until) / 1000;
  const xs = props.values.map((_, i) => end - (props.values.length - 1 - i) * props.bucketSeconds);
  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const color = props.color;
    const u = new uPlot(
      {
        width: 140,
        height: 32,
        pxAlign: false,
        cursor: { show: false },
        legend: { show: false },
        select: { show: false, left: 0, top: 0, width: 0, height: 0 },
        scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{ show: false }, { show: false }],
        series: [{}, { stroke: color, width: 1.5, fill: color + '22', points: { show: false } }],
      },
      [xs, props.values],
      el,
    );
    plot.current = u;
    return () => {
      u.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData([xs, props.values]);
  }, [props.values.join(','), props.until]);
  return (
    <span class="spark">
      <div ref={host} class="spark-chart" aria-hidden="true" />
      <span class="spark-label">{props.label}</span>
    </span>
  );
}
