// "{topic}" in a sink's destination name: the JS sinks' substitution, the parts the native
// Redis writer joins in C, and each sink's spelling of the route topic.
import test from 'ava';
import fc from 'fast-check';
import { kafkaTopicName } from '../src/sinks/kafka/kafka-sink.js';
import { keyTemplate } from '../src/sinks/redis/redis-commands.js';
import { templateParts, topicTemplate } from '../src/sinks/topic-template.js';

test('every "{topic}" is replaced by the route topic; a template without one is the name itself', (t) => {
  t.is(topicTemplate('s:{topic}')('shop/leads'), 's:shop/leads');
  t.is(topicTemplate('{topic}:{topic}:x')('a'), 'a:a:x');
  t.is(topicTemplate('{topic}')('leads'), 'leads');
  t.is(topicTemplate('fixed')('leads'), 'fixed');
  t.is(topicTemplate('{Topic} {topic')('leads'), '{Topic} {topic', 'only the exact placeholder');
  t.is(topicTemplate('k:{topic}')('$&$1'), 'k:$&$1', 'the topic is inserted as it is, never as a replacement pattern');
});

test('the native writer\'s key parts joined with the topic name the same key as the JS sinks', (t) => {
  const template = fc.array(fc.constantFrom('{topic}', 'q', ':', '{', '}', 'topic', 'é'), { minLength: 1, maxLength: 8 }).map((p) => p.join(''));
  fc.assert(fc.property(template, fc.string({ minLength: 1, maxLength: 20 }), (tpl, topic) => {
    const name = topicTemplate(tpl)(topic);
    return name === templateParts(tpl).join(topic) && name === tpl.replaceAll('{topic}', () => topic);
  }));
  t.deepEqual(templateParts('s:{topic}'), ['s:', '']);
  t.deepEqual(templateParts('s'), ['s']);
});

test('Redis: the stream or list key is the template, topic as it is', (t) => {
  t.is(topicTemplate(keyTemplate({ stream: 's:{topic}', push: 'right', format: 'raw' }))('shop/eu'), 's:shop/eu');
  t.is(topicTemplate(keyTemplate({ list: 'q:{topic}', push: 'left', format: 'raw' }))('shop/eu'), 'q:shop/eu');
});

test('Kafka: "/" of the route topic becomes "." in the topic name; the template\'s own text is kept', (t) => {
  t.is(kafkaTopicName('crowd.{topic}')('shop/eu/orders'), 'crowd.shop.eu.orders');
  t.is(kafkaTopicName('{topic}')('leads'), 'leads');
  t.is(kafkaTopicName('events')('shop/eu'), 'events');
  t.is(kafkaTopicName('a/{topic}')('b/c'), 'a/b.c', 'only the route topic is respelled');
});
