import './platform';
export * from './binding';
export declare const signal: (fd: number) => number, arm: (fd: number) => number;
